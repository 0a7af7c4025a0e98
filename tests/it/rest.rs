//! The AI Core REST API (`run --rest-api`), driven with the real `curl` the
//! way the AI Core documents and SAP's SDKs call it, against the real
//! operator binary and apiserver. Every response body is kept and checked
//! for secret data at the end of each test.
//!
//! - `cached`: reads from the operator's cache keep RBAC, read-your-writes;
//! - `documents`: the documents' calls, refusals, the quota;
//! - `dry_run`: `?dryRun=true` (extension), the preview, nothing written;
//! - `headers`: the SDKs' default headers in every scope, paging;
//! - `data`: values in Secrets, RBAC, rotation, refused calls change nothing;
//! - `tls`: the TLS listener, its reload, the plain-HTTP rule;
//! - `limits`: 429 with Retry-After, `x-request-id`;
//! - `roles`: the chart's sample caller role is enough;
//! - `openapi`: `/v2/admin/openapi.json`, and the server answering by it.

mod cached;
mod data;
mod documents;
mod dry_run;
mod headers;
mod limits;
mod openapi;
mod roles;
mod tls;

use std::path::Path;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::harness::control_plane;
use crate::operator::{Operator, b64};

const REST: [&str; 3] = ["--rest-api", "--rest-addr", "127.0.0.1:0"];
const SECRETS: &str = "/v2/admin/secrets";
const TENANT: &[(&str, &str)] = &[("AI-Tenant-Scope", "true")];
const TENANT_WIDE: &[(&str, &str)] = &[("AI-Tenant-Scope", "true"), ("AI-Resource-Group", "*")];
const NO_SCOPE: &[(&str, &str)] = &[];

/// `users[0].user.token` of a kubeconfig.
pub(crate) fn token(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).expect("reading the kubeconfig");
    let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("kubeconfig YAML");
    doc["users"][0]["user"]["token"]
        .as_str()
        .expect("a token in the kubeconfig")
        .to_owned()
}

#[derive(Debug)]
struct Reply {
    code: u16,
    body: Value,
    /// The `x-request-id` and `Retry-After` response headers ("" if absent).
    request_id: String,
    retry_after: String,
}

impl Reply {
    /// Asserts the status and returns the body.
    fn expect(&self, code: u16) -> &Value {
        assert_eq!(self.code, code, "unexpected reply {self:?}");
        &self.body
    }

    /// Asserts an AI Core error with `code` whose message contains `says`.
    fn expect_error(&self, code: u16, says: &str) {
        let body = self.expect(code);
        assert_eq!(body["error"]["code"], code.to_string(), "{self:?}");
        let message = body["error"]["message"].as_str().expect("error message");
        assert!(message.contains(says), "{message:?} should say {says:?}");
    }

    fn names(&self) -> Vec<String> {
        self.expect(200)["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r["name"].as_str().expect("name").to_owned())
            .collect()
    }
}

/// The REST API of one operator, called with curl.
struct Rest {
    url: String,
    admin: String,
    /// Extra curl arguments of every call (e.g. `--cacert`).
    curl_args: Vec<String>,
    /// Every response body so far, for [`Rest::assert_never_returned`].
    bodies: Mutex<Vec<String>>,
}

impl Rest {
    async fn new(op: &Operator) -> Self {
        Self::at(format!("http://{}", op.rest_addr().await), Vec::new())
    }

    fn at(url: String, curl_args: Vec<String>) -> Self {
        Rest {
            url,
            admin: token(&control_plane().kubeconfig),
            curl_args,
            bodies: Mutex::default(),
        }
    }

    /// `curl --location --request <method> "$AI_API_URL<path>" --header
    /// "Authorization: Bearer $TOKEN" --header ... --data-raw '<body>'`.
    async fn curl(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        scope: &[(&str, &str)],
        body: Option<&str>,
        extra: &[&str],
    ) -> Reply {
        let mut args: Vec<String> = ["--silent", "--show-error", "--location", "--request"]
            .map(str::to_owned)
            .to_vec();
        args.extend([method.to_owned(), format!("{}{path}", self.url)]);
        args.extend(self.curl_args.iter().cloned());
        if let Some(token) = token {
            args.extend(["--header".into(), format!("Authorization: Bearer {token}")]);
        }
        if body.is_some() || !extra.is_empty() {
            args.extend(["--header".into(), "Content-Type: application/json".into()]);
        }
        for (name, value) in scope {
            args.extend(["--header".into(), format!("{name}: {value}")]);
        }
        if let Some(body) = body {
            args.extend(["--data-raw".into(), body.to_owned()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let trailer = "\n%header{x-request-id}\n%header{retry-after}\n%{http_code}";
        args.extend(["--write-out".into(), trailer.into()]);
        let out = tokio::process::Command::new("curl")
            .args(&args)
            .output()
            .await
            .expect("running curl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "curl {method} {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut parts = stdout.rsplitn(4, '\n');
        let code = parts.next().expect("curl's status line");
        let retry_after = parts.next().expect("Retry-After line").to_owned();
        let request_id = parts.next().expect("x-request-id line").to_owned();
        let raw = parts.next().unwrap_or_default();
        self.bodies.lock().expect("bodies").push(raw.to_owned());
        let body = serde_json::from_str(raw)
            .unwrap_or_else(|e| panic!("{method} {path}: body {raw:?} is not JSON: {e}"));
        Reply {
            code: code.parse().expect("HTTP status"),
            body,
            request_id,
            retry_after,
        }
    }

    /// A call as the cluster admin.
    async fn admin(
        &self,
        method: &str,
        path: &str,
        scope: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let body = body.map(|b| b.to_string());
        self.curl(Some(&self.admin), method, path, scope, body.as_deref(), &[])
            .await
    }

    async fn post(&self, scope: &[(&str, &str)], body: Value) -> Reply {
        self.admin("POST", SECRETS, scope, Some(body)).await
    }

    async fn get(&self, name: &str, scope: &[(&str, &str)]) -> Reply {
        self.admin("GET", &format!("{SECRETS}/{name}"), scope, None)
            .await
    }

    async fn list(&self, query: &str, scope: &[(&str, &str)]) -> Reply {
        self.admin("GET", &format!("{SECRETS}{query}"), scope, None)
            .await
    }

    /// The last response body, as sent.
    fn last_body(&self) -> String {
        let bodies = self.bodies.lock().expect("bodies");
        bodies.last().cloned().unwrap_or_default()
    }

    /// Secret data, plain or base64, is in no response body so far.
    fn assert_never_returned(&self, values: &[&str]) {
        let bodies = self.bodies.lock().expect("bodies");
        assert!(!bodies.is_empty());
        for value in values {
            for needle in [value.to_string(), b64(value)] {
                let leaked: Vec<&String> = bodies.iter().filter(|b| b.contains(&needle)).collect();
                assert!(leaked.is_empty(), "{needle:?} was returned in {leaked:?}");
            }
        }
    }
}

fn secret(name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(b64(v))))
        .collect();
    json!({"name": name, "data": data})
}
