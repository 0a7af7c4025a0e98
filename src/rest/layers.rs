//! What every request passes around its handler: an `x-request-id` (the
//! caller's, or a new one) echoed in the response and carried by every log
//! line of the request, one log line per request (never headers or
//! bodies: tokens, secret data), and a limit on requests in flight that
//! answers 429 with `Retry-After` instead of queueing work the apiserver
//! would only queue too.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::error::ApiError;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Seconds a refused caller is told to wait: requests take milliseconds.
pub const RETRY_AFTER_SECS: u64 = 1;
/// Longest request id taken from a caller (longer ones are replaced).
const MAX_REQUEST_ID: usize = 128;

/// The caller's request id if it is printable ASCII of a sane length
/// (it goes into logs and a response header), else a new one.
pub fn request_id(sent: Option<&HeaderValue>) -> String {
    sent.and_then(|v| v.to_str().ok())
        .filter(|id| (1..=MAX_REQUEST_ID).contains(&id.len()))
        .filter(|id| id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_owned)
}

/// 32 hex digits: a randomly keyed SipHash of a counter (unique in this
/// process, unpredictable across processes; std only).
fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    let keys = KEYS.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:016x}{:016x}",
        keys.hash_one((n, 0)),
        keys.hash_one((n, 1))
    )
}

/// Outermost: the id, the span every log line of the request carries, and
/// the one line per request.
pub async fn trace(request: Request, next: Next) -> Response {
    let id = request_id(request.headers().get(&REQUEST_ID));
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let span = tracing::info_span!("rest", request_id = %id);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span).await;
    tracing::info!(
        request_id = %id,
        %method,
        path,
        status = response.status().as_u16(),
        millis = started.elapsed().as_millis() as u64,
        "REST request"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Requests in flight, at most the semaphore's permits; the rest get 429.
pub async fn limit(
    State(permits): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    match permits.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => too_many(),
    }
}

fn too_many() -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "too many requests in flight (--rest-max-concurrent-requests); retry after \
             {RETRY_AFTER_SECS} s"
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_sane_request_id_and_makes_one_otherwise() {
        let sent = |s: &str| HeaderValue::from_str(s).expect("header");
        assert_eq!(request_id(Some(&sent("abc-123"))), "abc-123");
        for bad in ["", "with space", &"x".repeat(129)] {
            let id = request_id(Some(&sent(bad)));
            assert_eq!(id.len(), 32, "{bad:?} -> {id}");
        }
        let made = request_id(None);
        assert!(made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");
        assert_ne!(request_id(None), made);
    }

    #[tokio::test]
    async fn refuses_with_retry_after() {
        let response = too_many();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
    }
}
