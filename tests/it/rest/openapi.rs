//! `GET /v2/admin/openapi.json` from the running operator, over plain HTTP
//! and over the TLS listener: SAP's SDK operations and headers are in it,
//! and the server answers each operation as the document says (status,
//! body keys, the error shape), with no token needed for the document.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::tls::make_cert;
use super::{NO_SCOPE, REST, Rest, secret};
use crate::harness::{scratch_dir, unique_suffix};
use crate::operator::Operator;

const OPENAPI: &str = "/v2/admin/openapi.json";
/// SAP's `SecretApi` functions (JS SDK), by method and path.
const SDK: [(&str, &str, &str); 5] = [
    (
        "post",
        "/v2/admin/secrets",
        "kubesubmitV4GenericSecretsCreate",
    ),
    (
        "get",
        "/v2/admin/secrets",
        "kubesubmitV4GenericSecretsGetAll",
    ),
    (
        "get",
        "/v2/admin/secrets/{secretName}",
        "kubesubmitV4GenericSecretsGet",
    ),
    (
        "patch",
        "/v2/admin/secrets/{secretName}",
        "kubesubmitV4GenericSecretsUpdate",
    ),
    (
        "delete",
        "/v2/admin/secrets/{secretName}",
        "kubesubmitV4GenericSecretsDelete",
    ),
];

/// The document, fetched without a token.
async fn fetch(rest: &Rest) -> Value {
    rest.curl(None, "GET", OPENAPI, NO_SCOPE, None, &[])
        .await
        .expect(200)
        .clone()
}

/// Paths, operationIds, scope headers, query and security: as the SDKs have them.
fn check_document(doc: &Value) {
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        ["/v2/admin/secrets", "/v2/admin/secrets/{secretName}"].into()
    );
    for (method, path, id) in SDK {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], id, "{method} {path}");
        let headers: Vec<&str> = op["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "header")
            .map(|p| p["name"].as_str().expect("name"))
            .collect();
        assert_eq!(headers, ["AI-Resource-Group", "AI-Tenant-Scope"], "{id}");
    }
    let list = doc["paths"]["/v2/admin/secrets"]["get"]["parameters"].to_string();
    for query in ["$top", "$skip", "$count"] {
        assert!(list.contains(&format!("\"{query}\"")), "{query} in {list}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let detail = doc["components"]["schemas"]["BckndGenericSecretDetails"].to_string();
    assert!(
        detail.contains("resourceGroupSecretsSyncStatus"),
        "{detail}"
    );
}

/// Schema `schema` ($ref or inline, through `allOf`): (all property names, the required ones).
fn keys_of(doc: &Value, schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.trim_start_matches("#/components/schemas/");
        return keys_of(doc, &doc["components"]["schemas"][name]);
    }
    let names = |v: &Value| -> BTreeSet<String> {
        v.as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect()
    };
    let mut all = names(&schema["properties"]);
    let mut required: BTreeSet<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (a, r) = keys_of(doc, part);
        all.extend(a);
        required.extend(r);
    }
    (all, required)
}

/// Asserts that `body`, answered `code` to `method path`, is what the
/// document promises for that status.
fn as_documented(doc: &Value, method: &str, path: &str, code: u16, body: &Value) {
    let response = &doc["paths"][path][method]["responses"][code.to_string()];
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path}: {code} is not documented"
    );
    let (all, required) = keys_of(doc, schema);
    let sent: BTreeSet<String> = body
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    assert!(
        sent.is_subset(&all),
        "{method} {path} {code}: {sent:?} not all in {all:?}"
    );
    assert!(
        required.is_subset(&sent),
        "{method} {path} {code}: {required:?} missing from {sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_serves_an_openapi_document_the_server_answers_by() {
    let op = Operator::start(&REST).await;
    let _group = op.resource_group("rg-a").await;
    let rest = Rest::new(&op).await;
    let doc = fetch(&rest).await;
    check_document(&doc);

    // Each operation in the SDK's order, with the headers `check_document`
    // found (JS SDK style: a resource group) and the documented query.
    let scope = [("AI-Resource-Group", "rg-a"), ("AI-Tenant-Scope", "false")];
    let bodies = [
        Some(secret("openapi-secret", &[("apiKey", "openapi-value")])),
        None,
        None,
        Some(json!({"data": {"apiKey": crate::operator::b64("openapi-rotated")}})),
        None,
    ];
    for ((method, path, id), body) in SDK.into_iter().zip(bodies) {
        let concrete = path.replace("{secretName}", "openapi-secret");
        let query = if method == "get" && !path.contains('{') {
            "?$top=1&$skip=0&$count=true"
        } else {
            ""
        };
        let body = body.map(|b| b.to_string());
        let reply = rest
            .curl(
                Some(&rest.admin),
                &method.to_uppercase(),
                &format!("{concrete}{query}"),
                &scope,
                body.as_deref(),
                &[],
            )
            .await;
        as_documented(&doc, method, path, reply.code, &reply.body);
        assert_eq!(reply.code, 200, "{id}: {reply:?}");
    }
    // Refusals, in the documented error shape.
    let reply = rest.get("openapi-secret", &scope).await;
    reply.expect_error(404, "not found");
    as_documented(
        &doc,
        "get",
        "/v2/admin/secrets/{secretName}",
        404,
        &reply.body,
    );
    let reply = rest
        .curl(None, "GET", "/v2/admin/secrets", &scope, None, &[])
        .await;
    as_documented(&doc, "get", "/v2/admin/secrets", 401, &reply.body);
    assert_eq!(reply.code, 401);
    rest.assert_never_returned(&["openapi-value", "openapi-rotated"]);
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_serves_the_openapi_document_over_tls() {
    let dir = scratch_dir().join(format!("rest-openapi-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("cert dir");
    let (cert, key) = make_cert(&dir, "openapi");
    let mut args = REST.to_vec();
    let (cert_arg, key_arg) = (cert.to_string_lossy(), key.to_string_lossy());
    args.extend(["--rest-tls-cert", &cert_arg, "--rest-tls-key", &key_arg]);
    let op = Operator::start(&args).await;
    let url = format!("https://{}", op.rest_addr().await);
    let rest = Rest::at(url, vec!["--cacert".into(), cert_arg.to_string()]);
    let doc = fetch(&rest).await;
    check_document(&doc);
    // The documented headers reach the same server over TLS.
    let reply = rest.list("", &[("AI-Tenant-Scope", "true")]).await;
    as_documented(&doc, "get", "/v2/admin/secrets", reply.code, &reply.body);
    assert!(reply.body["count"].is_u64(), "{reply:?}");
    let _ = std::fs::remove_dir_all(&dir);
    op.cleanup().await;
}
