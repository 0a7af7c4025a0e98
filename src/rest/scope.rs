//! The AI Core scope headers and where they point: `AI-Tenant-Scope: true`
//! is the main tenant, `AI-Tenant-Scope: true` with `AI-Resource-Group: *`
//! is tenant-wide (both in the tenant namespace), `AI-Resource-Group: <rg>`
//! alone is the namespace labelled `aicore.dev/resource-group=<rg>`. Pure:
//! the namespace lookup itself is in `mod.rs`.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;

use super::error::ApiError;
use crate::api::validation::is_label_value;
use crate::api::{RESOURCE_GROUP_LABEL, Scope};

pub const TENANT_SCOPE_HEADER: &str = "AI-Tenant-Scope";
pub const RESOURCE_GROUP_HEADER: &str = "AI-Resource-Group";

/// The scope a request asks for, from its headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requested {
    Tenant,
    TenantWide,
    /// A resource-group id (a label value, checked).
    ResourceGroup(String),
}

impl Requested {
    pub fn scope(&self) -> Scope {
        match self {
            Requested::Tenant => Scope::Tenant,
            Requested::TenantWide => Scope::TenantWide,
            Requested::ResourceGroup(_) => Scope::ResourceGroup,
        }
    }
}

/// The scope from the two header values (absent or empty: not given).
pub fn parse(
    tenant_scope: Option<&str>,
    resource_group: Option<&str>,
) -> Result<Requested, ApiError> {
    let tenant = match tenant_scope.map(str::trim).filter(|v| !v.is_empty()) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "header {TENANT_SCOPE_HEADER} must be true or false"
            )));
        }
    };
    let group = resource_group.map(str::trim).filter(|v| !v.is_empty());
    match (tenant, group) {
        (true, None) => Ok(Requested::Tenant),
        (true, Some("*")) => Ok(Requested::TenantWide),
        (true, Some(_)) => Err(ApiError::bad_request(format!(
            "with {TENANT_SCOPE_HEADER}: true, {RESOURCE_GROUP_HEADER} must be absent (main \
             tenant) or * (tenant-wide)"
        ))),
        (false, Some("*")) => Err(ApiError::bad_request(format!(
            "{RESOURCE_GROUP_HEADER}: * (tenant-wide) also needs {TENANT_SCOPE_HEADER}: true"
        ))),
        (false, Some(rg)) if is_label_value(rg) => Ok(Requested::ResourceGroup(rg.to_owned())),
        (false, Some(_)) => Err(ApiError::bad_request(format!(
            "{RESOURCE_GROUP_HEADER} is not a valid resource group id (at most 63 \
             alphanumerics, '-', '_' or '.', starting and ending alphanumeric)"
        ))),
        (false, None) => Err(ApiError::bad_request(format!(
            "say where the secret lives: header {RESOURCE_GROUP_HEADER}: <resource group>, \
             or {TENANT_SCOPE_HEADER}: true (main tenant), or both with \
             {RESOURCE_GROUP_HEADER}: * (tenant-wide)"
        ))),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request(format!("header {name} is not ASCII text")))
        })
        .transpose()
}

impl<S: Send + Sync> FromRequestParts<S> for Requested {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse(
            header(&parts.headers, TENANT_SCOPE_HEADER)?,
            header(&parts.headers, RESOURCE_GROUP_HEADER)?,
        )
    }
}

/// Label selector for the namespace of resource group `rg` within this
/// installation (`installation`: the operator's `--namespace-selector`).
/// `rg` is a checked label value, so it cannot widen the selector.
pub fn namespace_selector(rg: &str, installation: Option<&str>) -> String {
    match installation {
        Some(selector) => format!("{RESOURCE_GROUP_LABEL}={rg},{selector}"),
        None => format!("{RESOURCE_GROUP_LABEL}={rg}"),
    }
}

/// The one live namespace among those labelled for `rg`.
pub fn pick_namespace(rg: &str, labelled: &[Namespace]) -> Result<String, ApiError> {
    let live: Vec<String> = labelled
        .iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_none())
        .map(|ns| ns.name_any())
        .collect();
    match live.as_slice() {
        [] => Err(ApiError::not_found(format!(
            "resource group {rg} not found"
        ))),
        [one] => Ok(one.clone()),
        several => Err(ApiError::conflict(format!(
            "resource group {rg} is ambiguous: namespaces {} all carry \
             {RESOURCE_GROUP_LABEL}={rg}; an administrator must relabel all but one",
            several.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;

    #[test]
    fn maps_headers_as_the_ai_core_documents_say() {
        assert_eq!(parse(Some("true"), None), Ok(Requested::Tenant));
        assert_eq!(parse(Some("TRUE"), Some("")), Ok(Requested::Tenant));
        assert_eq!(parse(Some("true"), Some("*")), Ok(Requested::TenantWide));
        assert_eq!(
            parse(None, Some("default")),
            Ok(Requested::ResourceGroup("default".into()))
        );
        assert_eq!(
            parse(Some("false"), Some("rg-1")),
            Ok(Requested::ResourceGroup("rg-1".into()))
        );
        assert_eq!(Requested::TenantWide.scope(), Scope::TenantWide);
    }

    #[test]
    fn refuses_missing_or_contradictory_headers() {
        for (tenant, rg) in [
            (None, None),
            (Some("false"), None),
            (Some("yes"), None),
            (Some("true"), Some("rg-1")),
            (None, Some("*")),
            // A selector injection attempt is not a label value.
            (None, Some("rg-1,team=x")),
            (None, Some("-rg")),
        ] {
            let err = parse(tenant, rg).expect_err("refused");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{tenant:?} {rg:?}");
        }
    }

    #[test]
    fn selects_the_resource_group_within_the_installation() {
        assert_eq!(
            namespace_selector("rg-a", None),
            "aicore.dev/resource-group=rg-a"
        );
        assert_eq!(
            namespace_selector("rg-a", Some("!gso-test")),
            "aicore.dev/resource-group=rg-a,!gso-test"
        );
    }

    fn namespace(name: &str, terminating: bool) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                deletion_timestamp: terminating.then(|| Time(k8s_openapi::jiff::Timestamp::now())),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    #[test]
    fn picks_the_single_live_namespace() {
        assert_eq!(
            pick_namespace("rg", &[namespace("a", false), namespace("old", true)]),
            Ok("a".to_owned())
        );
        let missing = pick_namespace("rg-x", &[namespace("old", true)]).expect_err("none");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.message(), "resource group rg-x not found");
        let several = pick_namespace("rg", &[namespace("a", false), namespace("b", false)])
            .expect_err("ambiguous");
        assert_eq!(several.status(), StatusCode::CONFLICT);
        assert!(several.message().contains("a, b"), "{}", several.message());
    }
}
