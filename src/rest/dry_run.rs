//! `?dryRun=true` on `POST` and `PATCH /v2/admin/secrets` (our extension to
//! the AI Core API): the request runs as it would, every write of it as an
//! apiserver dry run made with the caller's client (so RBAC, admission and
//! the CRD's rules answer as for the real request, and its refusals are the
//! same), and the answer is the [`Preview`] of the object it would store.
//! The preview's reads use the operator's client: they show what the
//! operator would write and report in status, nothing more. The API's
//! write parameters, dry or not, are here too.

use kube::api::{PatchParams, PostParams};
use serde::Deserialize;
use utoipa::IntoParams;

use super::Server;
use super::error::{ApiError, json};
use crate::api::GenericSecret;
use crate::preview::Preview;
use crate::preview::cluster::{self, Known};

/// Field manager of the writes made through this API (with the caller's
/// identity), so `managedFields` tell them from kubectl's.
const FIELD_MANAGER: &str = "aicore-rest-api";

/// Every write of the API; `dry_run`: the apiserver checks it (RBAC,
/// admission, the CRD's rules) and stores nothing.
pub fn post_params(dry_run: bool) -> PostParams {
    PostParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    }
}

pub fn patch_params(dry_run: bool) -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        dry_run,
        ..PatchParams::default()
    }
}

/// The query of `POST` and `PATCH`; other parameters are ignored.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Raw {
    /// Extension: `true` writes nothing and answers the preview of what
    /// the operator would do (see the `Preview` schema) instead of the
    /// message.
    #[serde(rename = "dryRun")]
    #[param(value_type = Option<bool>)]
    dry_run: Option<String>,
}

/// Whether the raw query asks for a dry run.
pub fn requested(raw: Option<&str>) -> Result<bool, ApiError> {
    let raw: Raw = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("query: {e}")))?;
    match raw.dry_run.as_deref() {
        None | Some("false") => Ok(false),
        Some("true" | "") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun must be true or false, not {other:?}"
        ))),
    }
}

impl Server {
    /// The answer of a dry run that would store `gs`, whose data hashes to
    /// `data_hash` when the request carries the data.
    pub(super) async fn preview(
        &self,
        gs: &GenericSecret,
        data_hash: Option<String>,
    ) -> Result<axum::response::Response, ApiError> {
        let known = Known {
            data_hash,
            ..Known::default()
        };
        let preview: Preview = cluster::preview(&self.client, &self.settings, gs, known)
            .await
            .map_err(|e| ApiError::internal("previewing", &e))?;
        Ok(json(axum::http::StatusCode::OK, &preview))
    }
}

#[cfg(test)]
mod tests {
    use super::requested;

    #[test]
    fn dry_run_is_true_false_or_refused() {
        assert_eq!(requested(None).ok(), Some(false));
        assert_eq!(requested(Some("dryRun=true")).ok(), Some(true));
        assert_eq!(requested(Some("dryRun=false&x=1")).ok(), Some(false));
        assert!(requested(Some("dryRun=All")).is_err());
    }
}
