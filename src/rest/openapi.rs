//! `GET /v2/admin/openapi.json`: the OpenAPI 3 document of the REST API,
//! generated from the handlers' `#[utoipa::path]` attributes and the
//! request and response types. The router is built from the same
//! attributes ([`super::routes`]), so the document cannot drift from what
//! is served. Names follow SAP's AI Core spec, which the SDKs are generated
//! from: the operationIds are the JS SDK's `SecretApi` functions (the spec
//! spells them `kubesubmit.v4.generic_secrets.*`), the schemas its
//! `Bcknd*` types. What differs from AI Core says so ("Extension"), such
//! as `?dryRun=true` and its `Preview`.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required};
use utoipa::{IntoResponses, ToSchema};

use super::error::ErrorBody;
use super::layers::REQUEST_ID;

/// Where the document is served (no token needed: it holds no data).
pub const PATH: &str = "/v2/admin/openapi.json";
/// The one security scheme: the caller's Kubernetes bearer token.
pub const SECURITY_SCHEME: &str = "bearer";
/// The tag of SAP's spec for these operations.
pub const TAG: &str = "Secret";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "SAP AI Core generic secrets (generic-secrets-operator)",
        description = "The AI Core REST API for generic secrets, served by \
            generic-secrets-operator over GenericSecret objects. Calls are made as the \
            caller: RBAC on genericsecrets (and on Secrets for their data) decides. \
            Secret data goes in, never out."
    ),
    tags((name = "Secret", description = "Generic secrets: metadata out, data never")),
    security(("bearer" = [])),
    components(schemas(ErrorBody, crate::preview::Preview))
)]
pub struct Doc;

/// Adds to the routed document what every operation shares and the
/// attributes cannot say once: the security scheme, and the `x-request-id`
/// that `layers::trace` echoes.
pub fn complete(mut doc: OpenApi) -> OpenApi {
    let mut http = Http::new(HttpAuthScheme::Bearer);
    http.description = Some(
        "A Kubernetes bearer token (a ServiceAccount token, an OIDC id token) that the \
         cluster's apiserver accepts; AI Core uses an OAuth2 client-credentials token"
            .to_owned(),
    );
    doc.components
        .get_or_insert_default()
        .add_security_scheme(SECURITY_SCHEME, SecurityScheme::Http(http));
    let request_id = ParameterBuilder::new()
        .name(REQUEST_ID.as_str())
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Extension: the caller's request id (printable ASCII, at most 128), \
             logged with the request; a new one when absent",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build();
    let echoed = HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some("Extension: the request id, sent or made"))
        .build();
    for item in doc.paths.paths.values_mut() {
        item.parameters
            .get_or_insert_default()
            .push(request_id.clone().into());
        for op in operations(item) {
            for response in op.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .headers
                        .insert(REQUEST_ID.to_string(), echoed.clone().into());
                }
            }
        }
    }
    doc
}

/// Every operation of a path item, whatever its method.
pub fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
        &mut item.query,
    ]
    .into_iter()
    .flatten()
    .chain(item.additional_operations.values_mut())
}

/// The refusals every call can meet, all in the AI Core error shape.
pub struct Refused;

impl IntoResponses for Refused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let error = |description: &str| {
            ResponseBuilder::new().description(description).content(
                "application/json",
                Content::new(Some(Ref::from_schema_name(ErrorBody::name()))),
            )
        };
        let retry_after = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
            .description(Some("Seconds to wait before trying again"))
            .build();
        [
            ("400", error(
                "The request is not valid (scope headers, body, name, labels, query); the \
                 message says what to fix",
            )),
            ("401", error(
                "No bearer token, or the apiserver does not accept it (WWW-Authenticate: Bearer)",
            )),
            ("403", error("RBAC refuses the caller this call (the apiserver's message)")),
            ("404", error(
                "The resource group, or the named secret in this scope, does not exist",
            )),
            ("409", error(
                "The name is taken (POST); the data is in a Secret this API does not write \
                 (PATCH); the resource group's namespace is ambiguous",
            )),
            ("429", error(
                "Extension: more requests in flight than --rest-max-concurrent-requests, or \
                 the apiserver's own 429; AI Core has no 429",
            )
            .header("Retry-After", retry_after)),
            ("500", error("The operator failed (its log says why)")),
            ("502", error(
                "Extension: the Kubernetes API failed or could not be reached",
            )),
        ]
        .into_iter()
        .map(|(code, response)| (code.to_owned(), response.build().into()))
        .collect()
    }
}

#[cfg(test)]
mod tests;
