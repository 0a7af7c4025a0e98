//! Who the caller is, and acting as them.
//!
//! Every request must carry `Authorization: Bearer <token>` (else 401). The
//! REST API then makes its Kubernetes calls on GenericSecrets *as the
//! caller*: a `kube::Client` built from the operator's own configuration
//! (same cluster URL and CA) with its credentials replaced by just that
//! token. The apiserver authenticates the token, authorises every call with
//! RBAC and writes the caller's name into its audit log.
//!
//! DESIGN §6 proposed a TokenReview plus a SubjectAccessReview with the
//! operator's identity, followed by the writes with the operator's
//! identity. Passing the token through is better on every count:
//! - the check and the action cannot drift apart: RBAC decides the very
//!   call that is made (a SubjectAccessReview would have to repeat each
//!   verb, namespace and resource, and gets subresources or `resourceNames`
//!   rules wrong easily);
//! - the operator needs no `tokenreviews`/`subjectaccessreviews` rights
//!   and never writes GenericSecrets with its own, broader identity, so a
//!   bug in the REST layer cannot grant more than the caller has;
//! - audit logs and `managedFields` name the real user, not the operator;
//! - one round trip per call instead of three.
//!
//! Calls made with the operator's identity answer only callers whose token
//! the apiserver accepted (a `SelfSubjectReview`, made once per token by
//! [`super::clients`]): the lookup of a resource group's namespace (callers
//! need not be allowed to list namespaces). Tokens are never logged:
//! [`Caller`] has no `Debug`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::PostParams;
use kube::config::AuthInfo;
use kube::{Api, Client};

use super::error::ApiError;

/// The bearer token of a request.
pub struct Caller {
    token: String,
}

/// The token of an `Authorization` header value (`Bearer` in any case).
pub fn bearer_token(header: Option<&str>) -> Result<&str, ApiError> {
    let missing = || ApiError::unauthorized("an Authorization: Bearer <token> header is required");
    let (scheme, token) = header
        .ok_or_else(missing)?
        .split_once(' ')
        .ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = bearer_token(header)?.to_owned();
        Ok(Caller { token })
    }
}

impl Caller {
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// A client that acts as the holder of `token` (see [`config_for`]).
pub fn client_for(base: &kube::Config, token: &str) -> Result<Client, ApiError> {
    Client::try_from(config_for(base, token)).map_err(|e| {
        tracing::error!(error = %e, "building a client for the caller failed");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "cannot build a Kubernetes client",
        )
    })
}

/// `base` (the operator's own configuration) for where and how to connect,
/// `token` as the only credential: no client certificate, exec plugin or
/// token file of the operator's survives.
pub fn config_for(base: &kube::Config, token: &str) -> kube::Config {
    let mut config = base.clone();
    config.auth_info = AuthInfo {
        token: Some(token.to_owned().into()),
        ..AuthInfo::default()
    };
    config
}

/// Asks the apiserver who the caller is, only to fail with 401 for a token
/// it does not accept, so that requests with a bad token learn nothing from
/// the operator's own view (which resource groups exist).
pub async fn authenticate(client: &Client) -> Result<(), ApiError> {
    Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn takes_the_bearer_token() {
        assert_eq!(bearer_token(Some("Bearer abc.def")), Ok("abc.def"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer  "),
            Some("Basic YTpi"),
        ] {
            let err = bearer_token(bad).expect_err("refused");
            assert_eq!(err.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_caller_client_carries_only_the_callers_token() {
        let mut base = kube::Config::new("https://127.0.0.1:6443".parse().expect("url"));
        base.root_cert = Some(vec![b"ca".to_vec()]);
        base.auth_info = AuthInfo {
            token_file: Some("/var/run/secrets/operator-token".into()),
            client_certificate_data: Some("b3BlcmF0b3I=".into()),
            ..AuthInfo::default()
        };
        let config = config_for(&base, "caller-token");
        assert_eq!(config.cluster_url, base.cluster_url);
        assert_eq!(config.root_cert, base.root_cert);
        // Nothing but the token is left of the credentials.
        assert_eq!(
            serde_json::to_value(&config.auth_info).expect("json"),
            serde_json::json!({"token": "caller-token"})
        );
        base.root_cert = None;
        assert!(client_for(&base, "caller-token").is_ok());
    }
}
