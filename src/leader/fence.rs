//! The leader's fence: a client layer that lets reads (and watches)
//! through and refuses every other request outside the leader's [`Term`]
//! (its last renewal plus the renew deadline, which ends before any standby
//! may take over). A write that passes is bounded by what is left of the
//! term, so none can land after a standby took over. A leader that was
//! paused (or cut off) and wakes up cannot write even one Secret.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

/// Until when this instance may write as the leader (its last renewal plus
/// the renew deadline); shared by the election and the fenced client.
#[derive(Clone, Debug, Default)]
pub struct Term(Arc<Mutex<Option<Instant>>>);

impl Term {
    pub fn is_current(&self) -> bool {
        !self.remaining().is_zero()
    }

    /// Time left in the term (zero when it has ended or never began).
    pub fn remaining(&self) -> Duration {
        self.0
            .lock()
            .ok()
            .and_then(|until| *until)
            .map_or(Duration::ZERO, |until| {
                until.saturating_duration_since(Instant::now())
            })
    }

    pub(super) fn extend_to(&self, until: Instant) {
        if let Ok(mut current) = self.0.lock() {
            *current = Some(until);
        }
    }

    /// End the term now (shutdown): nothing passes the fence any more.
    pub fn end(&self) {
        if let Ok(mut current) = self.0.lock() {
            *current = None;
        }
    }
}

/// The layer; see the module documentation.
#[derive(Clone, Debug)]
pub struct Fence(pub Term);

impl<S> Layer<S> for Fence {
    type Service = Fenced<S>;

    fn layer(&self, inner: S) -> Fenced<S> {
        Fenced {
            inner,
            term: self.0.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fenced<S> {
    inner: S,
    term: Term,
}

impl<S, B> Service<http::Request<B>> for Fenced<S>
where
    S: Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.method() == http::Method::GET {
            let response = self.inner.call(request);
            return Box::pin(async move { response.await.map_err(Into::into) });
        }
        let remaining = self.term.remaining();
        if remaining.is_zero() {
            return Box::pin(async {
                Err(BoxError::from(
                    "not the leader: the lease was not renewed in time",
                ))
            });
        }
        let response = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(remaining, response).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(BoxError::from(
                    "write timed out at the end of the leader's term",
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::Timing;
    use kube::client::Body;

    fn request(method: http::Method) -> http::Request<Body> {
        http::Request::builder()
            .method(method)
            .uri("/api/v1/namespaces/t/secrets")
            .body(Body::empty())
            .expect("request")
    }

    #[tokio::test(start_paused = true)]
    async fn the_fence_lets_writes_through_only_during_the_term() {
        use tower::{Service, ServiceExt, service_fn};
        let term = Term::default();
        let mut client = tower::Layer::layer(
            &Fence(term.clone()),
            service_fn(|_: http::Request<Body>| async { Ok::<_, BoxError>(()) }),
        );
        let mut send = async |method| client.ready().await?.call(request(method)).await;
        assert!(send(http::Method::GET).await.is_ok(), "reads always pass");
        assert!(send(http::Method::PATCH).await.is_err(), "no term yet");
        let timing = Timing::default();
        term.extend_to(Instant::now() + timing.renew_deadline);
        assert!(send(http::Method::PATCH).await.is_ok());
        assert!(send(http::Method::DELETE).await.is_ok());
        tokio::time::advance(timing.renew_deadline).await;
        assert!(send(http::Method::POST).await.is_err(), "the term ended");
        assert!(send(http::Method::GET).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_cannot_outlast_the_term() {
        use tower::{Service, ServiceExt, service_fn};
        let term = Term::default();
        let slow = service_fn(|_: http::Request<Body>| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, BoxError>(())
        });
        let mut client = tower::Layer::layer(&Fence(term.clone()), slow);
        term.extend_to(Instant::now() + Duration::from_secs(2));
        let started = Instant::now();
        let result = client
            .ready()
            .await
            .expect("ready")
            .call(request(http::Method::PATCH))
            .await;
        assert!(result.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        term.end();
        assert!(!term.is_current());
    }
}
