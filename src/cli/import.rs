//! `cognitive-operator import`: writes the manifests of the accounts and deployments already in
//! Azure, so that an estate made in the portal, by `az` or by Terraform comes under GitOps.
//! Read-only: it never writes to Azure. `plan` of its output shows only the adoption.

use std::path::PathBuf;

use serde_json::Value;

use super::import_estate::{Estate, ImportOptions, ImportedAccount, Scope, parse_account_id};
use crate::api::DeletionPolicy;
use crate::arm::{ArmArgs, ArmClient, CredentialMode};

/// Exit codes of `import`.
pub const DONE: i32 = 0;
pub const FAILED: i32 = 1;

/// Output formats of `import`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    Yaml,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// ARM ids of accounts to import (instead of whole resource groups or the subscription).
    pub account_ids: Vec<String>,

    /// The subscription to read (default: --subscription-id).
    #[arg(long)]
    pub subscription: Option<String>,

    /// Only this resource group (repeatable); default: the whole subscription.
    #[arg(long = "resource-group", short = 'g')]
    pub resource_groups: Vec<String>,

    /// Namespace of the manifests.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,

    /// deletionPolicy of the accounts: Orphan (default, so that deleting an imported resource
    /// never deletes what it imported), Delete or DeleteAndPurge. Deployments get Orphan, or
    /// Delete with either of the others.
    #[arg(long, default_value = "Orphan", value_parser = parse_deletion_policy)]
    pub deletion_policy: DeletionPolicy,

    /// Also import accounts and deployments another resource or cluster manages (their owner
    /// tag is dropped from the spec; plan then reports them AlreadyManaged).
    #[arg(long)]
    pub include_owned: bool,

    /// Also write the scope's soft-deleted accounts, with softDeletePolicy: Restore.
    #[arg(long)]
    pub include_deleted: bool,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: ImportFormat,

    /// Write a file per account (with its deployments) in this directory instead of printing.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,

    #[command(flatten)]
    pub arm: ArmArgs,
}

fn parse_deletion_policy(text: &str) -> Result<DeletionPolicy, String> {
    serde_json::from_value(Value::from(text))
        .map_err(|_| format!("{text:?}: expected Orphan, Delete or DeleteAndPurge"))
}

impl ImportArgs {
    fn scope(&self) -> Result<Scope, String> {
        let accounts = self
            .account_ids
            .iter()
            .map(|id| parse_account_id(id).ok_or_else(|| format!("{id:?} is not an account's ARM id (/subscriptions/{{s}}/resourceGroups/{{rg}}/providers/Microsoft.CognitiveServices/accounts/{{name}})")))
            .collect::<Result<Vec<_>, _>>()?;
        let subscription_id = self
            .subscription
            .clone()
            .or_else(|| self.arm.subscription_id.clone())
            .or_else(|| accounts.first().map(|a| a.subscription_id.clone()))
            .ok_or("--subscription (or --subscription-id, or account ids) is required")?;
        if accounts
            .iter()
            .any(|a| !a.subscription_id.eq_ignore_ascii_case(&subscription_id))
        {
            return Err("the account ids must all be in the --subscription".into());
        }
        Ok(Scope {
            subscription_id,
            resource_groups: self.resource_groups.clone(),
            accounts,
        })
    }

    fn options(&self) -> ImportOptions {
        ImportOptions {
            namespace: self.namespace.clone(),
            deletion_policy: self.deletion_policy,
            include_owned: self.include_owned,
            include_deleted: self.include_deleted,
        }
    }
}

pub async fn run(args: ImportArgs) -> i32 {
    let scope = match args.scope() {
        Ok(scope) => scope,
        Err(message) => {
            eprintln!("error: {message}");
            return FAILED;
        }
    };
    let client = match args.arm.client(CredentialMode::AzureCli) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: {e}");
            return FAILED;
        }
    };
    match write(&client, &scope, &args).await {
        Ok(()) => DONE,
        Err(message) => {
            eprintln!("error: {message}");
            FAILED
        }
    }
}

async fn write(client: &ArmClient, scope: &Scope, args: &ImportArgs) -> Result<(), String> {
    let estate = super::import_estate::read_estate(client, scope, &args.options())
        .await
        .map_err(|e| e.to_string())?;
    for note in &estate.notes {
        eprintln!("note: {note}");
    }
    let Some(dir) = &args.out_dir else {
        print!("{}", render(&estate, args.output));
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for account in &estate.accounts {
        let single = Estate {
            accounts: vec![account.clone()],
            notes: Vec::new(),
        };
        let name = account.account.metadata.name.as_deref().unwrap_or_default();
        let extension = match args.output {
            ImportFormat::Yaml => "yaml",
            ImportFormat::Json => "json",
        };
        let path = dir.join(format!("{name}.{extension}"));
        std::fs::write(&path, render(&single, args.output))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The estate as manifests: YAML documents (notes as comments first), or a JSON `List`.
pub fn render(estate: &Estate, format: ImportFormat) -> String {
    match format {
        ImportFormat::Json => {
            let items: Vec<Value> = estate.accounts.iter().flat_map(documents).collect();
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            format!("{}\n", serde_json::to_string_pretty(&list).expect("json"))
        }
        ImportFormat::Yaml => {
            let mut text = String::new();
            for note in &estate.notes {
                text.push_str(&format!("# {note}\n"));
            }
            for account in &estate.accounts {
                text.push_str(&format!("---\n# imported from {}\n", account.arm_id));
                if let Some(purge) = &account.deleted {
                    text.push_str(&format!(
                        "# soft-deleted: apply restores it (Azure purges it on {purge})\n"
                    ));
                }
                for (i, document) in documents(account).iter().enumerate() {
                    if i > 0 {
                        text.push_str("---\n");
                    }
                    text.push_str(&serde_saphyr::to_string(document).expect("yaml"));
                }
            }
            text
        }
    }
}

/// An account's resource, then its deployments', without the (empty) status.
fn documents(account: &ImportedAccount) -> Vec<Value> {
    let mut documents = vec![without_status(
        serde_json::to_value(&account.account).expect("json"),
    )];
    documents.extend(
        account
            .deployments
            .iter()
            .map(|d| without_status(serde_json::to_value(d).expect("json"))),
    );
    documents
}

fn without_status(mut document: Value) -> Value {
    if let Some(object) = document.as_object_mut() {
        object.remove("status");
    }
    document
}
