//! Whether a caller may `list` or `get` GenericSecrets in a namespace,
//! asked with a `SelfSubjectAccessReview` made with the caller's own client
//! before a read is answered from the operator's cache ([`super::cache`]):
//! RBAC decides as it would for the apiserver's own LIST or GET.
//!
//! Only "allowed" is kept, for [`REVIEW_TTL`]: rights revoked stop the
//! cached reads within that time; a refusal is never kept, and the read
//! then goes to the apiserver as the caller, whose 403 the caller gets.
//! Concurrent first reads of one key wait for one review rather than each
//! sending their own (32 clients starting at once made p99 a review burst).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client, Resource};
use sha2::{Digest, Sha256};

use super::clients::TtlMap;
use super::error::ApiError;
use crate::api::GenericSecret;

/// How long an allowed review is reused (per token, verb and namespace).
pub const REVIEW_TTL: Duration = Duration::from_secs(10);
/// Reviews kept at once.
pub const MAX_REVIEWS: usize = 4096;

/// The verbs the cached reads stand in for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    List,
    Get,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::List => "list",
            Verb::Get => "get",
        }
    }
}

type Key = [u8; 32];
type Gate = tokio::sync::Mutex<()>;

pub struct Reviews {
    allowed: Mutex<TtlMap<()>>,
    /// The review in flight per key (held while it runs); dead entries go
    /// when a new one is added, so this holds about the requests in flight.
    in_flight: Mutex<HashMap<Key, Weak<Gate>>>,
}

impl Default for Reviews {
    fn default() -> Self {
        Self {
            allowed: Mutex::new(TtlMap::new(REVIEW_TTL, MAX_REVIEWS)),
            in_flight: Mutex::default(),
        }
    }
}

/// The key of a review: no token in the clear, and no two (token, verb,
/// namespace) sharing one (the parts are length-prefixed).
fn key(token: &str, verb: Verb, namespace: &str) -> Key {
    let mut hash = Sha256::new();
    for part in [token, verb.as_str(), namespace] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

impl Reviews {
    /// Whether the holder of `token` (whose client is `client`) may `verb`
    /// GenericSecrets in `namespace`.
    pub async fn allowed(
        &self,
        token: &str,
        client: &Client,
        verb: Verb,
        namespace: &str,
    ) -> Result<bool, ApiError> {
        let key = key(token, verb, namespace);
        if self.cached(&key) {
            return Ok(true);
        }
        let gate = self.gate(key);
        let _turn = gate.lock().await;
        if self.cached(&key) {
            return Ok(true); // allowed by the review this one waited for
        }
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(GenericSecret::group(&()).into_owned()),
                    resource: Some(GenericSecret::plural(&()).into_owned()),
                    verb: Some(verb.as_str().to_owned()),
                    namespace: Some(namespace.to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        if allowed {
            self.lock().insert(key, (), Instant::now());
        }
        Ok(allowed)
    }

    fn cached(&self, key: &Key) -> bool {
        self.lock().get(key, Instant::now()).is_some()
    }

    fn gate(&self, key: Key) -> Arc<Gate> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(gate) = in_flight.get(&key).and_then(Weak::upgrade) {
            return gate;
        }
        in_flight.retain(|_, gate| gate.strong_count() > 0);
        let gate = Arc::new(Gate::default());
        in_flight.insert(key, Arc::downgrade(&gate));
        gate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TtlMap<()>> {
        self.allowed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_are_keyed_by_token_verb_and_namespace() {
        let base = key("token", Verb::List, "team-a");
        assert_eq!(base, key("token", Verb::List, "team-a"));
        assert_ne!(base, key("token", Verb::Get, "team-a"));
        assert_ne!(base, key("token", Verb::List, "team-b"));
        assert_ne!(base, key("other", Verb::List, "team-a"));
        // Length-prefixed: moving a boundary changes the key.
        assert_ne!(key("ab", Verb::List, "c"), key("a", Verb::List, "bc"));
    }

    #[test]
    fn one_review_gate_per_key_while_in_flight() {
        let reviews = Reviews::default();
        let first = reviews.gate([1; 32]);
        assert!(Arc::ptr_eq(&first, &reviews.gate([1; 32])));
        drop(first);
        let _other = reviews.gate([2; 32]);
        let in_flight = reviews.in_flight.lock().expect("lock");
        assert_eq!(in_flight.len(), 1, "the finished one is gone");
    }
}
