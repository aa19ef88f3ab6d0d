//! A small Go `text/template` engine with the few Sprig functions the Helm chart uses, so the
//! chart can be rendered without a helm binary.
//!
//! Data are `serde_json::Value`s. Supported: `{{ }}` actions with `-` trim markers and
//! `/* */` comments; fields (`.a.b`), variables (`$`, `$x`, `$x.a`, `:=` and `=`); literals;
//! pipelines and parenthesised sub-pipelines; `if`/`else if`/`else`, `with`/`else with`,
//! `range` (lists, maps in key order, `$i, $v :=`, `else`); `define`, `template`, `include`.
//! Functions: `and or not eq ne lt le gt ge len print printf default empty quote toYaml toJson
//! indent nindent trunc trimSuffix trimPrefix replace contains required fail int`.
//!
//! It is stricter than Helm where that finds chart bugs: an unknown function, printing a map or
//! list, comparing values of different kinds, or a string function given a non-string is an
//! error. Like Helm (`missingkey=zero`), a missing map key is nil and prints as nothing, and a
//! field of nil is an error.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug)]
enum Item {
    Text(String),
    Action(Vec<Tok>),
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Byte offset of the `}}` closing an action body, skipping quoted strings.
fn find_close(body: &str) -> Result<usize> {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Ok(i),
            _ => {}
        }
        i += 1;
    }
    err("unclosed action")
}

fn lex(src: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    loop {
        let Some(start) = rest.find("{{") else {
            let text = if trim_next {
                rest.trim_start_matches(is_space)
            } else {
                rest
            };
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            return Ok(items);
        };
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let mut body = &rest[start + 2..];
        if body.starts_with('-') && body[1..].starts_with(is_space) {
            text = text.trim_end_matches(is_space);
            body = &body[1..];
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let trimmed = body.trim_start_matches(is_space);
        let end = if let Some(comment) = trimmed.strip_prefix("/*") {
            let close = comment
                .find("*/")
                .ok_or_else(|| Error("unclosed comment".into()))?;
            let after = &comment[close + 2..];
            let after_trimmed = after.trim_start_matches(is_space);
            let after_trimmed = after_trimmed.strip_prefix('-').unwrap_or(after_trimmed);
            if !after_trimmed.trim_start_matches(is_space).starts_with("}}") {
                return err("comment must be alone in its action");
            }
            let offset = body.len() - after.len();
            offset + find_close(after)?
        } else {
            find_close(body)?
        };
        let mut inner = &body[..end];
        trim_next = false;
        if let Some(stripped) = inner.strip_suffix('-')
            && stripped.ends_with(is_space)
        {
            trim_next = true;
            inner = stripped;
        }
        if !trimmed.starts_with("/*") {
            items.push(Item::Action(lex_action(inner)?));
        }
        rest = &body[end + 2..];
    }
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn lex_action(s: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    // Reads `.a.b.c` starting at a '.', returning the names.
    let fields = |i: &mut usize| -> Vec<String> {
        let mut names = Vec::new();
        while *i < chars.len()
            && chars[*i] == '.'
            && chars.get(*i + 1).is_some_and(|c| ident_char(*c))
        {
            *i += 1;
            let start = *i;
            while *i < chars.len() && ident_char(chars[*i]) {
                *i += 1;
            }
            names.push(chars[start..*i].iter().collect());
        }
        names
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if is_space(c) => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '"' => {
                let mut out = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return err("unterminated string");
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).copied().unwrap_or('\\');
                            i += 1;
                            out.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                        }
                        c => out.push(c),
                    }
                }
                toks.push(Tok::Lit(Value::String(out)));
            }
            '`' => {
                let start = i + 1;
                let len = chars[start..]
                    .iter()
                    .position(|c| *c == '`')
                    .ok_or_else(|| Error("unterminated raw string".into()))?;
                toks.push(Tok::Lit(Value::String(
                    chars[start..start + len].iter().collect(),
                )));
                i = start + len + 1;
            }
            '.' => {
                let names = fields(&mut i);
                if names.is_empty() {
                    toks.push(Tok::Dot);
                    i += 1;
                } else {
                    toks.push(Tok::Field(names));
                }
            }
            '$' => {
                let start = i;
                i += 1;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                toks.push(Tok::Var(name, fields(&mut i)));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let value = if let Ok(n) = text.parse::<i64>() {
                    Value::from(n)
                } else if let Ok(f) = text.parse::<f64>() {
                    Value::from(f)
                } else {
                    return err(format!("bad number {text}"));
                };
                toks.push(Tok::Lit(value));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                toks.push(match word.as_str() {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "nil" => Tok::Lit(Value::Null),
                    _ => Tok::Ident(word),
                });
            }
            other => return err(format!("unexpected character {other:?} in action {s:?}")),
        }
    }
    Ok(toks)
}

// ---------------------------------------------------------------- parser

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Lit(Value),
    Ident(String),
    Sub(Pipe),
}

#[derive(Debug, Clone, Default)]
struct Pipe {
    decl: Vec<String>,
    /// `:=` declares, `=` assigns an existing variable.
    declare: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Output(Pipe),
    If(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    With(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    Template(String, Option<Pipe>),
}

enum Stop {
    Eof,
    End,
    Else(Vec<Tok>),
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    defines: Vec<(String, Vec<Node>)>,
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let toks = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(toks) => toks,
            };
            let keyword = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                None => return err("empty action"),
                _ => "",
            };
            match keyword {
                "end" if toks.len() == 1 => return Ok((nodes, Stop::End)),
                "else" => return Ok((nodes, Stop::Else(toks[1..].to_vec()))),
                "if" | "with" => {
                    let mut branches = Vec::new();
                    let mut pipe = parse_pipe(&toks[1..])?;
                    let else_body = loop {
                        let (body, stop) = self.list()?;
                        branches.push((pipe, body));
                        match stop {
                            Stop::End => break Vec::new(),
                            Stop::Else(rest) if rest.is_empty() => break self.list_to_end()?,
                            Stop::Else(rest)
                                if rest.first() == Some(&Tok::Ident(keyword.into())) =>
                            {
                                pipe = parse_pipe(&rest[1..])?;
                            }
                            _ => return err(format!("bad else or missing end in {keyword}")),
                        }
                    };
                    nodes.push(if keyword == "if" {
                        Node::If(branches, else_body)
                    } else {
                        Node::With(branches, else_body)
                    });
                }
                "range" => {
                    let pipe = parse_pipe(&toks[1..])?;
                    let (body, stop) = self.list()?;
                    let else_body = match stop {
                        Stop::End => Vec::new(),
                        Stop::Else(rest) if rest.is_empty() => self.list_to_end()?,
                        _ => return err("bad else or missing end in range"),
                    };
                    nodes.push(Node::Range(pipe, body, else_body));
                }
                "define" => {
                    let Some(Tok::Lit(Value::String(name))) = toks.get(1) else {
                        return err("define needs a name");
                    };
                    let body = self.list_to_end()?;
                    self.defines.push((name.clone(), body));
                }
                "template" => {
                    let Some(Tok::Lit(Value::String(name))) = toks.get(1) else {
                        return err("template needs a name");
                    };
                    let pipe = if toks.len() > 2 {
                        Some(parse_pipe(&toks[2..])?)
                    } else {
                        None
                    };
                    nodes.push(Node::Template(name.clone(), pipe));
                }
                "block" | "break" | "continue" => {
                    return err(format!("{keyword} is not supported"));
                }
                _ => nodes.push(Node::Output(parse_pipe(&toks)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn list_to_end(&mut self) -> Result<Vec<Node>> {
        match self.list()? {
            (nodes, Stop::End) => Ok(nodes),
            _ => err("missing end"),
        }
    }
}

fn parse_pipe(toks: &[Tok]) -> Result<Pipe> {
    let mut pipe = Pipe::default();
    let mut rest = toks;
    // `$x :=`, `$x =`, `$i, $v :=`
    let names = |ts: &[Tok]| -> Vec<String> {
        ts.iter()
            .filter_map(|t| match t {
                Tok::Var(n, f) if f.is_empty() => Some(n.clone()),
                _ => None,
            })
            .collect()
    };
    for n in [1, 3] {
        if let Some(op @ (Tok::Declare | Tok::Assign)) = toks.get(n) {
            let decl = names(&toks[..n]);
            let shape_ok = decl.len() == n.div_ceil(2) && (n == 1 || toks[1] == Tok::Comma);
            if shape_ok {
                pipe.decl = decl;
                pipe.declare = *op == Tok::Declare;
                rest = &toks[n + 1..];
                break;
            }
        }
    }
    let mut depth = 0usize;
    let mut cmd_start = 0;
    let mut cmds: Vec<&[Tok]> = Vec::new();
    for (i, t) in rest.iter().enumerate() {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| Error("unbalanced )".into()))?
            }
            Tok::Pipe if depth == 0 => {
                cmds.push(&rest[cmd_start..i]);
                cmd_start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return err("unbalanced (");
    }
    cmds.push(&rest[cmd_start..]);
    for cmd in cmds {
        if cmd.is_empty() {
            return err("empty command in pipeline");
        }
        pipe.cmds.push(parse_args(cmd)?);
    }
    Ok(pipe)
}

fn parse_args(toks: &[Tok]) -> Result<Vec<Arg>> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let arg = match &toks[i] {
            Tok::Dot => Arg::Dot,
            Tok::Field(f) => Arg::Field(f.clone()),
            Tok::Var(n, f) => Arg::Var(n.clone(), f.clone()),
            Tok::Lit(v) => Arg::Lit(v.clone()),
            Tok::Ident(n) => Arg::Ident(n.clone()),
            Tok::LParen => {
                let mut depth = 0;
                let mut j = i;
                loop {
                    match toks[j] {
                        Tok::LParen => depth += 1,
                        Tok::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let sub = parse_pipe(&toks[i + 1..j])?;
                i = j;
                Arg::Sub(sub)
            }
            other => return err(format!("unexpected {other:?} in command")),
        };
        args.push(arg);
        i += 1;
    }
    Ok(args)
}

// ---------------------------------------------------------------- templates

/// A set of parsed templates sharing one namespace of `define`d names, like a Helm chart.
#[derive(Default)]
pub struct Templates {
    named: HashMap<String, Vec<Node>>,
}

impl Templates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `src` as the template `name`; its `define`s become available to every template.
    pub fn add(&mut self, name: &str, src: &str) -> Result<()> {
        let items = lex(src).map_err(|e| Error(format!("{name}: {e}")))?;
        let mut parser = Parser {
            items: items.into_iter(),
            defines: Vec::new(),
        };
        let (nodes, stop) = parser.list().map_err(|e| Error(format!("{name}: {e}")))?;
        if !matches!(stop, Stop::Eof) {
            return err(format!("{name}: unexpected end or else"));
        }
        for (define, body) in parser.defines {
            self.named.insert(define, body);
        }
        self.named.insert(name.to_string(), nodes);
        Ok(())
    }

    /// Executes the template `name` with `data` as both `.` and `$`.
    pub fn render(&self, name: &str, data: &Value) -> Result<String> {
        let mut exec = Exec {
            templates: self,
            vars: Vec::new(),
            depth: 0,
        };
        exec.call(name, data)
            .map_err(|e| Error(format!("{name}: {e}")))
    }
}

struct Exec<'a> {
    templates: &'a Templates,
    vars: Vec<(String, Value)>,
    depth: usize,
}

impl Exec<'_> {
    fn call(&mut self, name: &str, data: &Value) -> Result<String> {
        let nodes = self
            .templates
            .named
            .get(name)
            .ok_or_else(|| Error(format!("no template {name:?}")))?;
        if self.depth > 50 {
            return err("template recursion too deep");
        }
        let saved = std::mem::replace(&mut self.vars, vec![("$".into(), data.clone())]);
        self.depth += 1;
        let mut out = String::new();
        let result = self.run(nodes, data, &mut out);
        self.depth -= 1;
        self.vars = saved;
        result.map(|()| out)
    }

    fn run(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        for node in nodes {
            let mark = self.vars.len();
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Output(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        out.push_str(&print(&v)?);
                    }
                    // Declared variables live to the end of the enclosing block.
                    continue;
                }
                Node::If(branches, else_body) | Node::With(branches, else_body) => {
                    let is_with = matches!(node, Node::With(..));
                    let mut done = false;
                    for (pipe, body) in branches {
                        let v = self.pipe(pipe, dot)?;
                        if truth(&v) {
                            self.run(body, if is_with { &v } else { dot }, out)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.run(else_body, dot, out)?;
                    }
                }
                Node::Range(pipe, body, else_body) => {
                    let bare = Pipe {
                        decl: Vec::new(),
                        declare: false,
                        cmds: pipe.cmds.clone(),
                    };
                    let v = self.pipe(&bare, dot)?;
                    let entries: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, e)| (Value::from(i), e.clone()))
                            .collect(),
                        Value::Object(m) => {
                            let mut keys: Vec<&String> = m.keys().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| (Value::String(k.clone()), m[k].clone()))
                                .collect()
                        }
                        Value::Null => Vec::new(),
                        other => return err(format!("range can't iterate over {}", kind(other))),
                    };
                    if entries.is_empty() {
                        self.run(else_body, dot, out)?;
                    }
                    for (key, elem) in entries {
                        let inner = self.vars.len();
                        match pipe.decl.as_slice() {
                            [] => {}
                            [v] => self.vars.push((v.clone(), elem.clone())),
                            [k, v] => {
                                self.vars.push((k.clone(), key));
                                self.vars.push((v.clone(), elem.clone()));
                            }
                            _ => return err("too many range variables"),
                        }
                        self.run(body, &elem, out)?;
                        self.vars.truncate(inner);
                    }
                }
                Node::Template(name, pipe) => {
                    let data = match pipe {
                        Some(p) => self.pipe(p, dot)?,
                        None => Value::Null,
                    };
                    out.push_str(&self.call(name, &data)?);
                }
            }
            self.vars.truncate(mark);
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Result<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(format!("undefined variable {name}")),
        }
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.cmd(cmd, dot, value)?);
        }
        let value = value.unwrap_or(Value::Null);
        if let Some(name) = pipe.decl.first() {
            if pipe.declare {
                self.vars.push((name.clone(), value.clone()));
            } else {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => return err(format!("undefined variable {name}")),
                }
            }
        }
        Ok(value)
    }

    fn cmd(&mut self, args: &[Arg], dot: &Value, piped: Option<Value>) -> Result<Value> {
        if let Arg::Ident(name) = &args[0] {
            return self.func(name, &args[1..], dot, piped);
        }
        if args.len() > 1 || piped.is_some() {
            return err(format!(
                "can't give arguments to non-function {:?}",
                args[0]
            ));
        }
        self.arg(&args[0], dot)
    }

    fn arg(&mut self, arg: &Arg, dot: &Value) -> Result<Value> {
        match arg {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(path) => lookup(dot, path),
            Arg::Var(name, path) => lookup(&self.var(name)?, path),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Ident(name) => self.func(name, &[], dot, None),
            Arg::Sub(pipe) => self.pipe(pipe, dot),
        }
    }

    fn func(
        &mut self,
        name: &str,
        exprs: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value> {
        // and/or evaluate their arguments lazily and return the deciding one.
        if name == "and" || name == "or" {
            let count = exprs.len() + usize::from(piped.is_some());
            if count < 1 {
                return err(format!("{name} needs arguments"));
            }
            let mut last = Value::Null;
            for expr in exprs {
                last = self.arg(expr, dot)?;
                if truth(&last) == (name == "or") {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            return Ok(last);
        }
        let mut args = Vec::with_capacity(exprs.len() + 1);
        for expr in exprs {
            args.push(self.arg(expr, dot)?);
        }
        args.extend(piped);
        let n = args.len();
        let want = |k: usize| -> Result<()> {
            if n == k {
                Ok(())
            } else {
                err(format!("{name} takes {k} arguments, got {n}"))
            }
        };
        let a = &args;
        Ok(match name {
            "not" => {
                want(1)?;
                Value::Bool(!truth(&a[0]))
            }
            "empty" => {
                want(1)?;
                Value::Bool(!truth(&a[0]))
            }
            "eq" => {
                if n < 2 {
                    return err("eq needs at least 2 arguments");
                }
                let mut any = false;
                for other in &a[1..] {
                    any |= equal(&a[0], other)?;
                }
                Value::Bool(any)
            }
            "ne" => {
                want(2)?;
                Value::Bool(!equal(&a[0], &a[1])?)
            }
            "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let ord = compare(&a[0], &a[1])?;
                Value::Bool(match name {
                    "lt" => ord.is_lt(),
                    "le" => ord.is_le(),
                    "gt" => ord.is_gt(),
                    _ => ord.is_ge(),
                })
            }
            "len" => {
                want(1)?;
                Value::from(match &a[0] {
                    Value::String(s) => s.chars().count(),
                    Value::Array(v) => v.len(),
                    Value::Object(m) => m.len(),
                    other => return err(format!("len of {}", kind(other))),
                })
            }
            "print" => {
                let mut s = String::new();
                for (i, v) in a.iter().enumerate() {
                    if i > 0 && !a[i - 1].is_string() && !v.is_string() {
                        s.push(' ');
                    }
                    s.push_str(&print(v)?);
                }
                Value::String(s)
            }
            "printf" => {
                if n < 1 {
                    return err("printf needs a format");
                }
                Value::String(printf(string(&a[0], name)?, &a[1..])?)
            }
            "default" => {
                // Sprig: `default DEFAULT GIVEN`; a missing or empty GIVEN takes DEFAULT.
                if !(1..=2).contains(&n) {
                    return err("default takes 1 or 2 arguments");
                }
                match a.get(1) {
                    Some(given) if truth(given) => given.clone(),
                    _ => a[0].clone(),
                }
            }
            "quote" => {
                let parts: Result<Vec<String>> = a
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(|v| Ok(serde_json::to_string(&print(v)?).expect("string serializes")))
                    .collect();
                Value::String(parts?.join(" "))
            }
            "toYaml" => {
                want(1)?;
                let mut s = to_yaml(&a[0]);
                while s.ends_with('\n') {
                    s.pop();
                }
                Value::String(s)
            }
            "toJson" => {
                want(1)?;
                Value::String(serde_json::to_string(&a[0]).expect("JSON value serializes"))
            }
            "indent" | "nindent" => {
                want(2)?;
                let pad = " ".repeat(
                    usize::try_from(integer(&a[0], name)?)
                        .map_err(|_| Error("negative indent".into()))?,
                );
                let body = format!(
                    "{pad}{}",
                    string(&a[1], name)?.replace('\n', &format!("\n{pad}"))
                );
                Value::String(if name == "nindent" {
                    format!("\n{body}")
                } else {
                    body
                })
            }
            "trunc" => {
                want(2)?;
                let len = integer(&a[0], name)?;
                let s: Vec<char> = string(&a[1], name)?.chars().collect();
                let kept: String = if len >= 0 {
                    s.iter().take(len as usize).collect()
                } else {
                    s[s.len().saturating_sub(len.unsigned_abs() as usize)..]
                        .iter()
                        .collect()
                };
                Value::String(kept)
            }
            "trimSuffix" | "trimPrefix" => {
                want(2)?;
                let (affix, s) = (string(&a[0], name)?, string(&a[1], name)?);
                let trimmed = if name == "trimSuffix" {
                    s.strip_suffix(affix)
                } else {
                    s.strip_prefix(affix)
                };
                Value::String(trimmed.unwrap_or(s).to_string())
            }
            "replace" => {
                want(3)?;
                Value::String(
                    string(&a[2], name)?.replace(string(&a[0], name)?, string(&a[1], name)?),
                )
            }
            "contains" => {
                want(2)?;
                Value::Bool(string(&a[1], name)?.contains(string(&a[0], name)?))
            }
            "required" => {
                want(2)?;
                match &a[1] {
                    Value::Null => return err(string(&a[0], name)?.to_string()),
                    Value::String(s) if s.is_empty() => {
                        return err(string(&a[0], name)?.to_string());
                    }
                    v => v.clone(),
                }
            }
            "fail" => {
                want(1)?;
                return err(string(&a[0], name)?.to_string());
            }
            "int" => {
                want(1)?;
                Value::from(match &a[0] {
                    Value::Null => 0,
                    Value::Bool(b) => i64::from(*b),
                    Value::Number(num) => num
                        .as_i64()
                        .unwrap_or_else(|| num.as_f64().unwrap_or(0.0) as i64),
                    Value::String(s) => s.parse::<i64>().unwrap_or(0),
                    other => return err(format!("int of {}", kind(other))),
                })
            }
            "include" => {
                want(2)?;
                let template = string(&a[0], name)?.to_string();
                Value::String(self.call(&template, &a[1])?)
            }
            _ => return err(format!("function {name:?} not defined")),
        })
    }
}

// ---------------------------------------------------------------- values

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn lookup(v: &Value, path: &[String]) -> Result<Value> {
    let mut cur = v.clone();
    for key in path {
        cur = match cur {
            Value::Object(mut m) => m.remove(key).unwrap_or(Value::Null),
            Value::Null => return err(format!("nil pointer evaluating interface {{}}.{key}")),
            other => return err(format!("can't evaluate field {key} in {}", kind(&other))),
        };
    }
    Ok(cur)
}

/// Go template truth: false, 0, nil and empty strings, lists and maps are false.
pub fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn equal(a: &Value, b: &Value) -> Result<bool> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => Ok(a == b),
        (Value::Number(x), Value::Number(y)) => Ok(x.as_f64() == y.as_f64()),
        (Value::String(x), Value::String(y)) => Ok(x == y),
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        _ => err(format!(
            "incompatible types for comparison: {} and {}",
            kind(a),
            kind(b)
        )),
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .ok_or_else(|| Error("NaN comparison".into())),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => err(format!(
            "incompatible types for comparison: {} and {}",
            kind(a),
            kind(b)
        )),
    }
}

fn string<'v>(v: &'v Value, func: &str) -> Result<&'v str> {
    match v {
        Value::String(s) => Ok(s),
        other => err(format!(
            "{func}: wrong type for value; expected string; got {}",
            kind(other)
        )),
    }
}

fn integer(v: &Value, func: &str) -> Result<i64> {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 => Ok(f as i64),
        _ => err(format!("{func}: expected an integer, got {v}")),
    }
}

fn number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

/// How an action prints a value.
fn print(v: &Value) -> Result<String> {
    Ok(match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => s.clone(),
        other => {
            return err(format!(
                "refusing to print a {}; use toYaml or toJson",
                kind(other)
            ));
        }
    })
}

fn printf(format: &str, args: &[Value]) -> Result<String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars
            .next()
            .ok_or_else(|| Error("printf: trailing %".into()))?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .next()
            .ok_or_else(|| Error(format!("printf: missing argument for %{verb}")))?;
        match (verb, arg) {
            ('s', Value::String(s)) => out.push_str(s),
            ('d', Value::Number(_)) => out.push_str(&integer(arg, "printf %d")?.to_string()),
            ('v', v) => out.push_str(&print(v)?),
            ('q', Value::String(s)) => {
                out.push_str(&serde_json::to_string(s).expect("string serializes"))
            }
            (verb, v) => return err(format!("printf: %{verb} of {}", kind(v))),
        }
    }
    if args.next().is_some() {
        return err(format!("printf: too many arguments for {format:?}"));
    }
    Ok(out)
}

// ---------------------------------------------------------------- toYaml

/// Block-style YAML with sorted keys, like Helm's `toYaml` (sigs.k8s.io/yaml): nested maps
/// indent by two, lists sit at their key's indentation. Strings that YAML could read as
/// something else are double-quoted.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => yaml_map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => yaml_list(a, 0, &mut out),
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
    out
}

fn yaml_map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    for key in keys {
        let value = &m[key];
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_scalar(&Value::String(key.clone())));
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                yaml_map(inner, indent + 2, out);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                yaml_list(items, indent, out);
            }
            scalar => {
                out.push(' ');
                out.push_str(&yaml_scalar(scalar));
                out.push('\n');
            }
        }
    }
}

fn yaml_list(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        let mut nested = String::new();
        match item {
            Value::Object(m) if !m.is_empty() => yaml_map(m, indent + 2, &mut nested),
            Value::Array(a) if !a.is_empty() => yaml_list(a, indent + 2, &mut nested),
            scalar => {
                nested = format!("{}{}\n", " ".repeat(indent + 2), yaml_scalar(scalar));
            }
        }
        // The first line's indentation becomes the "- " marker.
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        out.push_str(&nested[indent + 2..]);
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => {
            let plain_chars = s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._/-+@=".contains(c));
            // A leading digit is fine when the string cannot read as a number: "500m", "64Mi".
            let number_like = s.parse::<f64>().is_ok()
                || !s.chars().any(|c| c.is_ascii_alphabetic())
                || ["0x", "0o", "0b"]
                    .iter()
                    .any(|p| s.to_ascii_lowercase().starts_with(p));
            let first_ok = s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '_');
            let first_ok =
                first_ok && !(s.starts_with(|c: char| c.is_ascii_digit()) && number_like);
            let ambiguous = matches!(
                s.to_ascii_lowercase().as_str(),
                "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
            );
            if plain_chars && first_ok && !ambiguous {
                s.clone()
            } else {
                serde_json::to_string(s).expect("string serializes")
            }
        }
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

// ---------------------------------------------------------------- Helm

/// Helm's value coalescing: `over` wins, maps merge deeply, and a null in `over` deletes the key.
pub fn merge_values(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut merged = b.clone();
            for (k, v) in o {
                if v.is_null() {
                    merged.remove(k);
                } else {
                    let next = match merged.get(k) {
                        Some(existing) => merge_values(existing, v),
                        None => v.clone(),
                    };
                    merged.insert(k.clone(), next);
                }
            }
            Value::Object(merged)
        }
        (_, over) => over.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(src: &str, data: Value) -> Result<String> {
        let mut t = Templates::new();
        t.add("t", src)?;
        t.render("t", &data)
    }

    #[test]
    fn trim_markers_fields_and_missing_keys() {
        let out = render("a  {{- .x -}}  b {{ .missing }}|", json!({"x": 1})).unwrap();
        assert_eq!(out, "a1b |");
        assert!(
            render("{{ .missing.deeper }}", json!({}))
                .unwrap_err()
                .0
                .contains("nil pointer")
        );
    }

    #[test]
    fn control_flow_and_variables() {
        let src = r#"{{- $n := "x" -}}
{{- range $i, $v := .list }}{{ $i }}={{ $v }};{{ end -}}
{{- range $k, $v := .map }}{{ $k }}:{{ $v }},{{ end -}}
{{- if eq .mode "a" }}A{{ else if eq .mode "b" }}B{{ else }}C{{ end -}}
{{- with .obj }}{{ .k }}{{ $n }}{{ $.mode }}{{ else }}none{{ end -}}
{{- range .empty }}x{{ else }}E{{ end }}"#;
        let out = render(src, json!({"list": ["p", "q"], "map": {"b": 2, "a": 1}, "mode": "b", "obj": {"k": "K"}, "empty": []})).unwrap();
        assert_eq!(out, "0=p;1=q;a:1,b:2,BKxbE");
    }

    #[test]
    fn define_include_and_sprig_functions() {
        let src = r#"{{- define "lbl" -}}
name: {{ .n | default "dflt" | quote }}
{{- end -}}
x:{{- include "lbl" . | nindent 2 }}
{{ printf "%s-%d" "a" 3 | trunc 3 }}|{{ "abc-" | trimSuffix "-" }}|{{ toYaml .m }}|{{ and 1 0 }}{{ or 0 "" "z" }}|{{ not .t }}"#;
        let out = render(
            src,
            json!({"n": "", "m": {"b": [1, {"c": "yes"}], "a": "1.0"}, "t": true}),
        )
        .unwrap();
        assert_eq!(
            out,
            "x:\n  name: \"dflt\"\na-3|abc|a: \"1.0\"\nb:\n- 1\n- c: \"yes\"|0z|false"
        );
    }

    #[test]
    fn to_yaml_keeps_strings_strings() {
        let v = json!({"cpu": "500m", "one": "1", "ver": "1.0", "hex": "0x1F", "t": "true", "num": 2, "e": {}, "l": []});
        assert_eq!(
            to_yaml(&v),
            "cpu: 500m\ne: {}\nhex: \"0x1F\"\nl: []\nnum: 2\none: \"1\"\nt: \"true\"\nver: \"1.0\"\n"
        );
    }

    #[test]
    fn strictness() {
        assert!(render("{{ .m }}", json!({"m": {"a": 1}})).is_err());
        assert!(render("{{ eq 1 \"1\" }}", json!({})).is_err());
        assert!(render("{{ nosuchfunc 1 }}", json!({})).is_err());
        assert_eq!(
            render("{{ required \"need x\" .x }}", json!({}))
                .unwrap_err()
                .0,
            "t: need x"
        );
    }
}
