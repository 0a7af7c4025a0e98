//! One `kube::Client` per caller token, reused for a short while: its
//! connections to the apiserver are kept open between requests, and the
//! token is authenticated once (a `SelfSubjectReview`) when its client is
//! made, before anything answers from the operator's own view. Keyed by a
//! SHA-256 of the token, so the map holds no token in the clear; a token
//! the apiserver refuses is never kept. [`TtlMap`] is the pure part.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Client;
use sha2::{Digest, Sha256};

use super::auth;
use super::error::ApiError;

/// How long a caller's client is reused. Every call it makes is still
/// authenticated and authorised by the apiserver; only the answers drawn
/// from the operator's own view (which namespace a resource group is) rely
/// on the authentication this long.
pub const CLIENT_TTL: Duration = Duration::from_secs(60);
/// Callers' clients kept at once; each holds its own idle connections.
pub const MAX_CLIENTS: usize = 256;

type Key = [u8; 32];

/// A bounded map whose entries expire `ttl` after they were made; when
/// full, the oldest goes.
#[derive(Debug)]
pub struct TtlMap<V> {
    entries: HashMap<Key, (V, Instant)>,
    ttl: Duration,
    capacity: usize,
}

impl<V: Clone> TtlMap<V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    pub fn get(&mut self, key: &Key, now: Instant) -> Option<V> {
        match self.entries.get(key) {
            Some((value, made)) if now.duration_since(*made) < self.ttl => Some(value.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&mut self, key: Key, value: V, now: Instant) {
        let ttl = self.ttl;
        self.entries
            .retain(|_, (_, made)| now.duration_since(*made) < ttl);
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            // O(capacity), only when full of live entries.
            let oldest = self.entries.iter().min_by_key(|(_, (_, made))| *made);
            if let Some(oldest) = oldest.map(|(k, _)| *k) {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (value, now));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The callers' clients.
pub struct Clients {
    /// The operator's own configuration: cluster URL and CA.
    base: kube::Config,
    cache: Mutex<TtlMap<Client>>,
}

impl Clients {
    pub fn new(base: kube::Config) -> Self {
        Self {
            base,
            cache: Mutex::new(TtlMap::new(CLIENT_TTL, MAX_CLIENTS)),
        }
    }

    /// An authenticated client acting as the holder of `token`; 401 when
    /// the apiserver does not accept it.
    pub async fn get(&self, token: &str) -> Result<Client, ApiError> {
        let key: Key = Sha256::digest(token.as_bytes()).into();
        if let Some(client) = self.lock().get(&key, Instant::now()) {
            return Ok(client);
        }
        let client = auth::client_for(&self.base, token)?;
        auth::authenticate(&client).await?;
        self.lock().insert(key, client.clone(), Instant::now());
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TtlMap<Client>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        [n; 32]
    }

    #[test]
    fn entries_expire_and_the_oldest_makes_room() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut lru = TtlMap::new(Duration::from_secs(60), 2);
        lru.insert(key(1), "one", at(0));
        lru.insert(key(2), "two", at(10));
        assert_eq!(lru.get(&key(1), at(59)), Some("one"));
        // Full: the oldest goes, whether or not it was read since.
        lru.insert(key(3), "three", at(20));
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.get(&key(1), at(20)), None);
        assert_eq!(lru.get(&key(2), at(20)), Some("two"));
        // Expired after the TTL, also without a new insert.
        assert_eq!(lru.get(&key(2), at(70)), None);
        assert_eq!(lru.get(&key(3), at(79)), Some("three"));
        assert_eq!(lru.get(&key(3), at(80)), None);
        assert!(lru.is_empty());
        // Replacing a key keeps the others.
        lru.insert(key(4), "four", at(100));
        lru.insert(key(5), "five", at(101));
        lru.insert(key(5), "five again", at(102));
        assert_eq!(lru.get(&key(4), at(103)), Some("four"));
        assert_eq!(lru.get(&key(5), at(103)), Some("five again"));
    }
}
