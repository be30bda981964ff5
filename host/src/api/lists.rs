//! `GET /v1/lists` (names and sizes) and `GET /v1/lists/{name}/members`.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{Path, Problem};

/// `GET /v1/lists/{name}/members`'s path: a list name as plugins give it (one line of 1 to 100
/// bytes, `runtime::capabilities::lists`); a list never used has no members.
#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct ListPath {
    #[schemars(length(min = 1, max = 100), regex(pattern = crate::domain::text::NON_BLANK_LINE))]
    name: String,
}

/// `GET /v1/lists`'s answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Lists {
    pub lists: Vec<ListSize>,
}

/// A list and how many contacts are on it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct ListSize {
    pub name: String,
    pub members: i64,
}

/// `GET /v1/lists/{name}/members`'s answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct ListMembers {
    pub name: String,
    pub members: Vec<ListMember>,
}

/// A contact on a list, and the lead that put them there.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct ListMember {
    pub email: String,
    pub lead_id: String,
}

pub(super) async fn list(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
) -> Result<Json<Lists>, Problem> {
    let lists =
        state.store.lists(&producer).await?.into_iter().map(|(name, members)| ListSize { name, members }).collect();
    Ok(Json(Lists { lists }))
}

pub(super) async fn members(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(ListPath { name }): Path<ListPath>,
) -> Result<Json<ListMembers>, Problem> {
    let members = state
        .store
        .list_members(&producer, &name)
        .await?
        .into_iter()
        .map(|(email, lead_id)| ListMember { email, lead_id })
        .collect();
    Ok(Json(ListMembers { name, members }))
}
