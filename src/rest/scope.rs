//! The AI Core scope headers, as the documents define them and SAP's SDKs
//! send them. `AI-Tenant-Scope: true` is the main tenant, unless
//! `AI-Resource-Group: *` stands beside it (tenant-wide); a named resource
//! group beside `AI-Tenant-Scope: true` is still the main tenant, because
//! the SDKs always send their client's resource group (the Python SDK adds
//! `AI-Tenant-Scope: true` by default, the JS SDK sends
//! `AI-Resource-Group` on every call). Without `AI-Tenant-Scope: true` the
//! resource group is the scope. Pure: [`parse`] is the one place that
//! decides.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use utoipa::IntoParams;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::error::ApiError;
use crate::api::Scope;
use crate::api::validation::is_label_value;

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
        (true, Some("*")) => Ok(Requested::TenantWide),
        // The SDKs' default resource group rides along: not a contradiction.
        (true, _) => Ok(Requested::Tenant),
        (false, Some("*")) => Err(ApiError::bad_request(format!(
            "{RESOURCE_GROUP_HEADER}: * (tenant-wide) also needs {TENANT_SCOPE_HEADER}: true"
        ))),
        (false, Some(rg)) if is_label_value(rg) => Ok(Requested::ResourceGroup(rg.to_owned())),
        (false, Some(_)) => Err(ApiError::bad_request(format!(
            "{RESOURCE_GROUP_HEADER} is not a valid resource group id (at most 63 \
             alphanumerics, '-', '_' or '.', starting and ending alphanumeric)"
        ))),
        (false, None) => Err(ApiError::bad_request(format!(
            "say where the secret lives: send header {RESOURCE_GROUP_HEADER}: <resource \
             group>, or {TENANT_SCOPE_HEADER}: true (main tenant), or {TENANT_SCOPE_HEADER}: \
             true with {RESOURCE_GROUP_HEADER}: * (tenant-wide)"
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

/// The two headers in the document, beside every operation: both optional
/// to the schema, one or both required by [`parse`].
impl IntoParams for Requested {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let header = |name, type_, description| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(type_)))
                .build()
        };
        vec![
            header(
                RESOURCE_GROUP_HEADER,
                Type::String,
                "The resource group (its namespace's resource-group id); `*` beside \
                 AI-Tenant-Scope: true is tenant-wide; beside AI-Tenant-Scope: true any \
                 other value is ignored (the SDKs always send their client's group)",
            ),
            header(
                TENANT_SCOPE_HEADER,
                Type::Boolean,
                "true: the main tenant (tenant-wide with AI-Resource-Group: *); false or \
                 absent: the resource group of AI-Resource-Group",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a header pair must give: a scope, or a 400 whose message says this.
    enum Want {
        Is(Requested),
        Refused(&'static str),
    }
    use Want::{Is, Refused};

    fn rg(id: &str) -> Want {
        Is(Requested::ResourceGroup(id.to_owned()))
    }

    #[test]
    fn every_combination_of_the_two_headers() {
        let no_scope = "send header AI-Resource-Group: <resource group>";
        let bad_group = "not a valid resource group id";
        let star_alone = "also needs AI-Tenant-Scope: true";
        let bad_tenant = "AI-Tenant-Scope must be true or false";
        // Rows: AI-Tenant-Scope; columns: AI-Resource-Group absent, empty,
        // "*", a named group (the SDKs' default), a selector injection.
        let groups = [None, Some(""), Some("*"), Some("default"), Some("rg-1,x=y")];
        let table: [(Option<&str>, [Want; 5]); 7] = [
            (
                None,
                [
                    Refused(no_scope),
                    Refused(no_scope),
                    Refused(star_alone),
                    rg("default"),
                    Refused(bad_group),
                ],
            ),
            (
                Some(""),
                [
                    Refused(no_scope),
                    Refused(no_scope),
                    Refused(star_alone),
                    rg("default"),
                    Refused(bad_group),
                ],
            ),
            (
                Some("false"),
                [
                    Refused(no_scope),
                    Refused(no_scope),
                    Refused(star_alone),
                    rg("default"),
                    Refused(bad_group),
                ],
            ),
            (
                Some("False"),
                [
                    Refused(no_scope),
                    Refused(no_scope),
                    Refused(star_alone),
                    rg("default"),
                    Refused(bad_group),
                ],
            ),
            (
                Some("true"),
                [
                    Is(Requested::Tenant),
                    Is(Requested::Tenant),
                    Is(Requested::TenantWide),
                    // The Python SDK's defaults: main tenant, not an error.
                    Is(Requested::Tenant),
                    Is(Requested::Tenant),
                ],
            ),
            (
                Some(" TRUE "),
                [
                    Is(Requested::Tenant),
                    Is(Requested::Tenant),
                    Is(Requested::TenantWide),
                    Is(Requested::Tenant),
                    Is(Requested::Tenant),
                ],
            ),
            (
                Some("yes"),
                [
                    Refused(bad_tenant),
                    Refused(bad_tenant),
                    Refused(bad_tenant),
                    Refused(bad_tenant),
                    Refused(bad_tenant),
                ],
            ),
        ];
        for (tenant, row) in &table {
            for (group, want) in groups.iter().zip(row) {
                let got = parse(*tenant, *group);
                match (want, got) {
                    (Is(scope), Ok(got)) => assert_eq!(&got, scope, "{tenant:?} {group:?}"),
                    (Refused(says), Err(e)) => {
                        assert_eq!(e.status().as_u16(), 400, "{tenant:?} {group:?}");
                        assert!(e.message().contains(says), "{tenant:?} {group:?}: {e:?}");
                    }
                    (_, got) => panic!("{tenant:?} {group:?}: got {got:?}"),
                }
            }
        }
        assert_eq!(Requested::TenantWide.scope(), Scope::TenantWide);
        assert_eq!(
            Requested::ResourceGroup("a".into()).scope(),
            Scope::ResourceGroup
        );
    }

    #[test]
    fn the_missing_scope_error_names_the_headers_to_send() {
        let err = parse(None, None).expect_err("no scope");
        assert_eq!(
            err.message(),
            "say where the secret lives: send header AI-Resource-Group: <resource group>, or \
             AI-Tenant-Scope: true (main tenant), or AI-Tenant-Scope: true with \
             AI-Resource-Group: * (tenant-wide)"
        );
    }
}
