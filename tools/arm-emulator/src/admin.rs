//! `/_emulator/...`: the admin API for tests and the demo (no auth, not throttled, not logged).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ArmError;
use super::provider::SeedTarget;
use super::render::timestamp;
use super::shared::{Shared, base_url};
use super::{Fault, ResourceGroupSeed};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/resourceGroups", post(seed_resource_group))
        .route("/_emulator/accounts", post(seed_account))
        .route("/_emulator/deletedAccounts", post(seed_deleted_account))
        .route("/_emulator/deployments", post(seed_deployment))
        .route("/_emulator/deployments/autoUpgrade", post(auto_upgrade))
        .route("/_emulator/quota", put(set_quota))
        .route("/_emulator/billing", get(billing))
        .route("/_emulator/clock/advance", post(advance_clock))
        .route("/_emulator/clock", get(clock))
        .route(
            "/_emulator/faults",
            post(add_faults).get(list_faults).delete(clear_faults),
        )
        .route("/_emulator/requests", get(requests).delete(clear_requests))
        .route("/_emulator/state", get(state))
        .route("/_emulator/permissions", post(permissions))
        .route("/_emulator/auth", post(auth))
}

async fn seed_resource_group(
    State(shared): State<Arc<Shared>>,
    Json(seed): Json<ResourceGroupSeed>,
) -> Response {
    let body = json!(seed);
    shared.seed_resource_group(seed);
    (StatusCode::CREATED, Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountSeed {
    subscription_id: String,
    resource_group: String,
    name: String,
    account: Value,
}

async fn seed_account(
    State(shared): State<Arc<Shared>>,
    Json(seed): Json<AccountSeed>,
) -> Response {
    seed_any(&shared, seed, false)
}

async fn seed_deleted_account(
    State(shared): State<Arc<Shared>>,
    Json(seed): Json<AccountSeed>,
) -> Response {
    seed_any(&shared, seed, true)
}

fn seed_any(shared: &Shared, seed: AccountSeed, soft_deleted: bool) -> Response {
    match shared.seed_account(
        &seed.subscription_id,
        &seed.resource_group,
        &seed.name,
        &seed.account,
        soft_deleted,
    ) {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(error) => arm_error(&error),
    }
}

fn arm_error(error: &ArmError) -> Response {
    (error.status(), Json(error.body())).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentSeed {
    subscription_id: String,
    resource_group: String,
    account: String,
    name: String,
    deployment: Value,
}

async fn seed_deployment(
    State(shared): State<Arc<Shared>>,
    Json(seed): Json<DeploymentSeed>,
) -> Response {
    let target = SeedTarget {
        subscription_id: &seed.subscription_id,
        resource_group: &seed.resource_group,
        account: &seed.account,
        name: &seed.name,
    };
    match shared.seed_deployment(&target, &seed.deployment) {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(error) => arm_error(&error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Upgrade {
    subscription_id: String,
    resource_group: String,
    account: String,
    name: String,
    version: String,
}

async fn auto_upgrade(State(shared): State<Arc<Shared>>, Json(upgrade): Json<Upgrade>) -> Response {
    let target = SeedTarget {
        subscription_id: &upgrade.subscription_id,
        resource_group: &upgrade.resource_group,
        account: &upgrade.account,
        name: &upgrade.name,
    };
    match shared.auto_upgrade(&target, &upgrade.version) {
        Ok(upgraded) => Json(json!({ "upgraded": upgraded })).into_response(),
        Err(error) => arm_error(&error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Quota {
    subscription_id: String,
    location: String,
    model: String,
    sku: String,
    limit: u32,
}

async fn set_quota(State(shared): State<Arc<Shared>>, Json(quota): Json<Quota>) -> Response {
    match shared.set_quota(
        &quota.subscription_id,
        &quota.location,
        &quota.model,
        &quota.sku,
        quota.limit,
    ) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => arm_error(&error),
    }
}

async fn billing(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.billing())
}

#[derive(Deserialize)]
struct Advance {
    seconds: f64,
}

async fn advance_clock(
    State(shared): State<Arc<Shared>>,
    Json(advance): Json<Advance>,
) -> Response {
    if !advance.seconds.is_finite() || advance.seconds < 0.0 {
        return (
            StatusCode::BAD_REQUEST,
            "seconds must be a non-negative number",
        )
            .into_response();
    }
    shared
        .clock
        .advance(Duration::from_secs_f64(advance.seconds));
    Json(json!({ "now": timestamp(shared.clock.now()) })).into_response()
}

async fn clock(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "now": timestamp(shared.clock.now()) }))
}

/// One fault or an array of faults.
#[derive(Deserialize)]
#[serde(untagged)]
enum Faults {
    One(Fault),
    Many(Vec<Fault>),
}

async fn add_faults(State(shared): State<Arc<Shared>>, Json(faults): Json<Faults>) -> StatusCode {
    let faults = match faults {
        Faults::One(fault) => vec![fault],
        Faults::Many(faults) => faults,
    };
    faults
        .into_iter()
        .for_each(|fault| shared.faults.add(fault));
    StatusCode::CREATED
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Json<Vec<Fault>> {
    Json(shared.faults.list())
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults.clear();
    StatusCode::NO_CONTENT
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.requests()).into_response()
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.clear_requests();
    StatusCode::NO_CONTENT
}

async fn state(State(shared): State<Arc<Shared>>, request: Request) -> Json<Value> {
    let (parts, _) = request.into_parts();
    Json(shared.dump_state_at(&base_url(&parts, shared.addr)))
}

#[derive(Deserialize)]
struct Permissions {
    purge: bool,
}

async fn permissions(
    State(shared): State<Arc<Shared>>,
    Json(permissions): Json<Permissions>,
) -> StatusCode {
    shared.set_purge_permission(permissions.purge);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Auth {
    token: Option<String>,
}

async fn auth(State(shared): State<Arc<Shared>>, Json(auth): Json<Auth>) -> StatusCode {
    shared.require_token(auth.token);
    StatusCode::NO_CONTENT
}
