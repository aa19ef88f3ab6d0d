//! Tag names, which Azure compares ignoring case ("Tag names are case-insensitive for
//! operations"): a body may not name one tag twice, and a write to an existing resource keeps
//! the casing its stored tag names have (Azure documents that a provider may keep either; this
//! one keeps the stored one, so a client that compares names exactly sees the difference).

use serde_json::{Map, Value};

use super::error::ArmError;

/// Refuses a tag map with two names equal ignoring case (400 `BadRequest`, target `tags`).
pub(crate) fn check_distinct_names(tags: &Map<String, Value>) -> Result<(), ArmError> {
    let mut names: Vec<&String> = tags.keys().collect();
    names.sort_by_key(|name| name.to_ascii_lowercase());
    match names
        .windows(2)
        .find(|pair| pair[0].eq_ignore_ascii_case(pair[1]))
    {
        Some(pair) => Err(ArmError::bad_request(
            format!(
                "The tag names '{}' and '{}' are the same tag: tag names are case-insensitive.",
                pair[0], pair[1]
            ),
            "tags",
        )),
        None => Ok(()),
    }
}

/// `tags` as written over `stored`: a name that matches a stored one ignoring case takes the
/// stored spelling.
pub(crate) fn keep_stored_casing(
    tags: Map<String, Value>,
    stored: &Map<String, Value>,
) -> Map<String, Value> {
    tags.into_iter()
        .map(|(name, value)| {
            let name = stored
                .keys()
                .find(|have| have.eq_ignore_ascii_case(&name))
                .cloned()
                .unwrap_or(name);
            (name, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn one_name_in_two_casings_is_refused_and_a_rewrite_keeps_the_stored_casing() {
        assert!(check_distinct_names(&map(json!({"a": "1", "b": "2"}))).is_ok());
        let error = check_distinct_names(&map(json!({"Env": "1", "b": "", "ENV": "2"})));
        assert_eq!(error.unwrap_err().target(), Some("tags"));
        let written = keep_stored_casing(
            map(json!({"team": "b", "new": "x"})),
            &map(json!({"Team": "a"})),
        );
        assert_eq!(Value::Object(written), json!({"Team": "b", "new": "x"}));
    }
}
