//! Every credential mode of `cognitive-operator run`, end to end: the operator gets its tokens
//! from the emulator's offline Entra ID or managed-identity endpoint over TLS, as it would from
//! Azure's, and the emulator takes only tokens it minted, so its request log names the identity
//! behind every ARM call.

use std::collections::BTreeSet;

use arm_emulator::MANAGED_IDENTITY_TENANT_ID;
use serde_json::json;

use crate::support::e2e::*;
use crate::support::identities::*;

const TENANT: &str = "00000000-0000-0000-0000-00000000e2e0";
/// The application federated with the operator's ServiceAccount (workload identity).
const FEDERATED_CLIENT: &str = "00000000-0000-0000-0000-0000000000f1";
/// The operator's service principal in client-secret mode.
const SP_CLIENT: &str = "00000000-0000-0000-0000-0000000000a1";
const SP_SECRET: &str = "sp1-secret";
/// The service principal of a resource's own credentials Secret.
const OWN_CLIENT: &str = "00000000-0000-0000-0000-0000000000a2";
const OWN_SECRET: &str = "sp2-secret";
/// The user-assigned managed identity.
const MI_CLIENT: &str = "00000000-0000-0000-0000-0000000000b1";
/// The host's system-assigned identity (registered first): what an operator that dropped
/// AZURE_CLIENT_ID would be given instead of MI_CLIENT.
const SYSTEM_ASSIGNED: &str = "00000000-0000-0000-0000-0000000000b0";

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn every_credential_mode_calls_arm_as_its_own_identity() {
    let cluster = Cluster::start_with_tls(|issuer| {
        vec![
            format!(
                "--federated-identity={TENANT}/{FEDERATED_CLIENT}@{issuer}#{}",
                operator_subject()
            ),
            format!("--service-principal={TENANT}/{SP_CLIENT}:{SP_SECRET}"),
            format!("--service-principal={TENANT}/{OWN_CLIENT}:{OWN_SECRET}"),
            format!("--managed-identity={SYSTEM_ASSIGNED}"),
            format!("--managed-identity={MI_CLIENT}"),
            format!("--identity-header={IDENTITY_HEADER}"),
        ]
    })
    .await;
    let workload = OperatorIdentity::WorkloadIdentity {
        tenant: TENANT.into(),
        client: FEDERATED_CLIENT.into(),
        token_file: cluster.federated_token(),
    };
    let client_secret = OperatorIdentity::ClientSecret {
        tenant: TENANT.into(),
        client: SP_CLIENT.into(),
        secret: SP_SECRET.into(),
    };
    let managed = OperatorIdentity::ManagedIdentity {
        client_id: Some(MI_CLIENT.into()),
    };
    // One namespace per run, each operator watching only its own: an account stays with the
    // identity that made it, not with whichever operator runs next.
    for (namespace, account, identity) in [
        ("by-workload-identity", "wi", &workload),
        ("by-client-secret", "sp", &client_secret),
        ("by-managed-identity", "mi", &managed),
    ] {
        cluster.create_namespace(namespace);
        cluster
            .apply(&account_manifest(namespace, account, json!({})))
            .unwrap();
        run_until_ready(&cluster, namespace, identity, &[account]);
    }
    // A resource with its own service principal, beside one with the operator's identity.
    let namespace = "by-own-secret";
    cluster.create_namespace(namespace);
    cluster
        .apply(
            &json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "azure-identity", "namespace": namespace},
                    "stringData": {"tenantId": TENANT, "clientId": OWN_CLIENT,
                                   "clientSecret": OWN_SECRET}})
            .to_string(),
        )
        .unwrap();
    let own_secret = json!({"credentialsSecretRef": {"name": "azure-identity"}});
    cluster
        .apply(&account_manifest(namespace, "own", own_secret))
        .unwrap();
    cluster
        .apply(&account_manifest(namespace, "operators", json!({})))
        .unwrap();
    run_until_ready(&cluster, namespace, &workload, &["own", "operators"]);

    let federated = identity(
        "servicePrincipal",
        TENANT,
        FEDERATED_CLIENT,
        "client_assertion",
    );
    let sp = identity("servicePrincipal", TENANT, SP_CLIENT, "client_secret");
    let own = identity("servicePrincipal", TENANT, OWN_CLIENT, "client_secret");
    let mi = identity(
        "managedIdentity",
        MANAGED_IDENTITY_TENANT_ID,
        MI_CLIENT,
        "managed_identity",
    );
    let emulator = &cluster.emulator;
    assert_eq!(emulator.callers_of("wi").await, set(&federated));
    assert_eq!(emulator.callers_of("sp").await, set(&sp));
    assert_eq!(emulator.callers_of("mi").await, set(&mi));
    assert_eq!(emulator.callers_of("own").await, set(&own));
    assert_eq!(
        emulator.callers_of("operators").await,
        set(&federated),
        "the operator's own identity stays the workload one beside a resource's own"
    );

    let refused: Vec<String> = emulator
        .requests()
        .await
        .iter()
        .filter(|r| r.status == 401 || r.caller.is_none())
        .map(|r| {
            format!(
                "{} {} {} by {}",
                r.status,
                r.method,
                r.path,
                describe(r.caller.as_ref())
            )
        })
        .collect();
    assert!(
        refused.is_empty(),
        "every ARM call had an issued token: {refused:#?}"
    );

    let tokens: BTreeSet<String> = emulator
        .token_requests()
        .await
        .iter()
        .map(|t| {
            format!(
                "{} {}/{} {} {}",
                t.endpoint,
                t.tenant_id.as_deref().unwrap_or("-"),
                t.client_id.as_deref().unwrap_or("-"),
                t.grant.as_deref().unwrap_or("refused"),
                t.status
            )
        })
        .collect();
    let expected: BTreeSet<String> = [
        format!("entra {TENANT}/{FEDERATED_CLIENT} client_assertion 200"),
        format!("entra {TENANT}/{SP_CLIENT} client_secret 200"),
        format!("entra {TENANT}/{OWN_CLIENT} client_secret 200"),
        format!("managedIdentity {MANAGED_IDENTITY_TENANT_ID}/{MI_CLIENT} managed_identity 200"),
    ]
    .into();
    assert_eq!(
        tokens, expected,
        "tokens were asked for these identities only, and given"
    );
}

/// Starts the operator as `identity`, watching only `namespace`, until `accounts` are Ready;
/// then kills it.
fn run_until_ready(
    cluster: &Cluster,
    namespace: &str,
    identity: &OperatorIdentity,
    accounts: &[&str],
) {
    let name = format!("operator-{namespace}");
    let watch = ["--no-leader-election", "--namespace", namespace];
    let mut operator = cluster.start_operator_as(&name, identity, &watch);
    for account in accounts {
        cluster.wait_ready(namespace, account);
    }
    operator.kill();
}

fn set(identity: &str) -> BTreeSet<String> {
    BTreeSet::from([identity.to_string()])
}
