//! The document against the router built from it, and against the SDKs'
//! names and shapes.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tower::ServiceExt;

use super::super::{Server, access, cache, clients, groups, router, routes};
use crate::plan::Rules;
use crate::rest::model::{Detail, List, Message, Summary};

/// SAP's `SecretApi` (JS SDK): method, path (ours: `/v2` and the admin
/// prefix), function name.
const SDK: [(&str, &str, &str); 5] = [
    (
        "get",
        "/v2/admin/secrets",
        "kubesubmitV4GenericSecretsGetAll",
    ),
    (
        "post",
        "/v2/admin/secrets",
        "kubesubmitV4GenericSecretsCreate",
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
const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "patch", "trace"];

fn doc() -> Value {
    serde_json::to_value(routes().1).expect("the document serializes")
}

/// (method, path, operationId) of every operation in `doc`.
fn operations(doc: &Value) -> BTreeSet<(String, String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut all = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                let id = op["operationId"].as_str().expect("an operationId");
                all.insert((method.clone(), path.clone(), id.to_owned()));
            }
        }
    }
    all
}

/// A router whose handlers never reach an apiserver (nothing listens on
/// port 9): the requests below are refused before they would.
fn test_router() -> axum::Router {
    let base = kube::Config::new("http://127.0.0.1:9".parse().expect("uri"));
    let client = kube::Client::try_from(base.clone()).expect("client");
    let server = Server {
        clients: clients::Clients::new(base),
        groups: groups::Cache::unwatched(client.clone(), None),
        objects: cache::Cache::unwatched(),
        reviews: access::Reviews::default(),
        rules: Rules {
            tenant_namespace: "tenant".into(),
            override_interval: jiff::SignedDuration::from_secs(0),
            max_tenant_wide: 1,
        },
        tenant_wide: Mutex::new(()),
        client,
        settings: crate::preview::cluster::Settings {
            rules: Rules {
                tenant_namespace: "tenant".into(),
                override_interval: jiff::SignedDuration::from_secs(0),
                max_tenant_wide: 1,
            },
            adopt_existing: false,
            namespace_selector: None,
        },
    };
    router(Arc::new(server), 8)
}

async fn call(router: &axum::Router, method: &str, path: &str) -> (StatusCode, Value) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
}

#[test]
fn the_operations_are_the_sdks() {
    let want = SDK
        .iter()
        .map(|(m, p, id)| (m.to_string(), p.to_string(), id.to_string()))
        .collect();
    assert_eq!(operations(&doc()), want);
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_operations() {
    let router = test_router();
    let doc = doc();
    let documented = operations(&doc);
    for path in ["/v2/admin/secrets", "/v2/admin/secrets/{secretName}"] {
        let concrete = path.replace("{secretName}", "my-secret");
        for method in METHODS {
            let (status, body) = call(&router, method, &concrete).await;
            let listed = documented.iter().any(|(m, p, _)| m == method && p == path);
            // A served operation reaches its handler, whose first check is
            // the token; any other method is refused by the router.
            let want = match listed {
                true => StatusCode::UNAUTHORIZED,
                false => StatusCode::METHOD_NOT_ALLOWED,
            };
            assert_eq!(status, want, "{method} {path}: {body}");
        }
    }
    for other in [
        "/v2/admin/secret",
        "/v2/admin/secrets/a/b",
        "/v2/admin/openapi",
    ] {
        assert_eq!(call(&router, "get", other).await.0, StatusCode::NOT_FOUND);
    }
    // The document itself: without a token, and what the router was built from.
    assert_eq!(
        call(&router, "get", super::PATH).await,
        (StatusCode::OK, doc)
    );
}

#[test]
fn every_operation_has_the_scope_headers_security_and_refusals() {
    let doc = doc();
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&json!("http"), &json!("bearer"))
    );
    let error = json!({"$ref": "#/components/schemas/BckndErrorResponse"});
    for (method, path, _) in SDK {
        let item = &doc["paths"][path];
        let op = &item[method];
        assert_eq!(op["tags"], json!(["Secret"]));
        let params: Vec<(&str, &str)> = op["parameters"]
            .as_array()
            .into_iter()
            .chain(item["parameters"].as_array())
            .flatten()
            .map(|p| {
                (
                    p["in"].as_str().unwrap_or(""),
                    p["name"].as_str().unwrap_or(""),
                )
            })
            .collect();
        for header in ["AI-Resource-Group", "AI-Tenant-Scope", "x-request-id"] {
            assert!(
                params.contains(&("header", header)),
                "{method} {path}: {params:?}"
            );
        }
        if path.ends_with("{secretName}") {
            assert!(params.contains(&("path", "secretName")), "{params:?}");
        }
        let responses = &op["responses"];
        assert!(responses["200"]["content"]["application/json"]["schema"]["$ref"].is_string());
        for code in ["400", "401", "403", "404", "409", "429", "500", "502"] {
            let schema = &responses[code]["content"]["application/json"]["schema"];
            assert_eq!(schema, &error, "{method} {path} {code}");
        }
        assert!(responses["429"]["headers"]["Retry-After"].is_object());
        assert!(responses["200"]["headers"]["x-request-id"].is_object());
    }
    let list = &doc["paths"]["/v2/admin/secrets"]["get"]["parameters"];
    let query: Vec<&str> = list
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(query, ["$top", "$skip", "$count"]);
}

/// The property names of schema `name`, through `allOf` and `$ref`s.
fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
    let schema = &doc["components"]["schemas"][name];
    let mut all: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        match part["$ref"].as_str() {
            Some(r) => all.extend(properties(
                doc,
                r.trim_start_matches("#/components/schemas/"),
            )),
            None => all.extend(
                part["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.clone()),
            ),
        }
    }
    all
}

fn keys(value: impl serde::Serialize) -> BTreeSet<String> {
    let value = serde_json::to_value(value).expect("json");
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn schemas_have_the_sdks_names_and_the_real_types_keys() {
    let doc = doc();
    let summary = Summary {
        name: "S".into(),
        created_at: None,
        labels: vec![crate::rest::model::Label {
            key: "ext.ai.sap.com/a".into(),
            value: "b".into(),
        }],
    };
    let map = Some([("rg".to_owned(), true)].into());
    let detail = Detail {
        summary,
        resource_group_secret_replication_status: map.clone(),
        resource_group_secrets_sync_status: map,
    };
    assert_eq!(keys(&detail), properties(&doc, "BckndGenericSecretDetails"));
    assert!(
        properties(&doc, "BckndGenericSecretDetails").contains("resourceGroupSecretsSyncStatus")
    );
    let list = List {
        count: 1,
        resources: vec![detail.summary],
    };
    assert_eq!(
        keys(&list),
        properties(&doc, "BckndListGenericSecretsResponse")
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["BckndListGenericSecretsResponse"]["required"],
        json!(["count", "resources"])
    );
    assert_eq!(
        keys(Message::deleted("S")),
        properties(&doc, "BckndGenericSecretDataResponse")
    );
    assert_eq!(
        schemas["BckndGenericSecretPostBody"]["required"],
        json!(["name", "data"])
    );
    assert_eq!(
        properties(&doc, "BckndErrorResponse"),
        ["error".to_owned()].into()
    );
    assert_eq!(
        properties(&doc, "BckndError"),
        ["code".to_owned(), "message".to_owned()].into()
    );
    for name in [
        "BckndGenericSecretPatchBody",
        "BckndGenericSecretLabel",
        "BckndGenericSecretData",
    ] {
        assert!(schemas[name].is_object(), "{name}");
    }
}

/// Every example of secret data is a placeholder, never a value.
#[test]
fn examples_hold_no_secret_values() {
    fn data_examples<'a>(v: &'a Value, under_data: bool, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if under_data && matches!(k.as_str(), "example" | "examples" | "value") {
                        out.push(child);
                    }
                    data_examples(
                        child,
                        under_data || k == "data" || k == "BckndGenericSecretData",
                        out,
                    );
                }
            }
            Value::Array(items) => items.iter().for_each(|i| data_examples(i, under_data, out)),
            _ => {}
        }
    }
    let doc = doc();
    let mut found = Vec::new();
    data_examples(&doc, false, &mut found);
    assert!(!found.is_empty());
    // Placeholders only: `<` is not base64, so no example passes as a value.
    let mut strings = Vec::new();
    found.iter().for_each(|v| leaves(v, &mut strings));
    assert!(!strings.is_empty());
    for s in strings {
        assert!(
            s.starts_with('<') && s.ends_with('>'),
            "{s:?} in a data example"
        );
    }
}

fn leaves<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Object(map) => map.values().for_each(|c| leaves(c, out)),
        Value::Array(items) => items.iter().for_each(|c| leaves(c, out)),
        _ => {}
    }
}

/// Extension: `?dryRun=true` on POST and PATCH, answered by a `Preview`.
#[test]
fn dry_run_is_documented_with_its_preview() {
    let doc = doc();
    for (path, method) in [
        ("/v2/admin/secrets", "post"),
        ("/v2/admin/secrets/{secretName}", "patch"),
    ] {
        let params = doc["paths"][path][method]["parameters"].to_string();
        assert!(params.contains("\"dryRun\""), "{method} {path}: {params}");
    }
    let preview = properties(&doc, "Preview");
    for key in ["object", "verdict", "ready", "secrets"] {
        assert!(preview.contains(key), "{key} in {preview:?}");
    }
}
