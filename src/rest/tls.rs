//! The REST API's listeners: which are allowed ([`check_listener`], pure)
//! and the TLS one (rustls, HTTP/1.1). Callers send bearer tokens that the
//! apiserver accepts, so plain HTTP is served on loopback only unless
//! explicitly allowed (e.g. behind a TLS-terminating proxy or mesh).
//!
//! The certificate and key come from PEM files and are picked up again when
//! they change, as cert-manager rotates them (the kubelet swaps a mounted
//! Secret's files atomically). Each handshake compares the files'
//! modification time, length and inode with those loaded (two `stat`s); a
//! changed pair is loaded and checked (key matches certificate) before it
//! replaces the old one. A pair that does not load (say, the certificate
//! written but not yet the key) leaves the old one serving, with a warning.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors), so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Plain HTTP is for loopback, or where the operator says so.
pub fn check_listener(addr: SocketAddr, tls: bool, allow_plain: bool) -> Result<(), String> {
    if tls || allow_plain || addr.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "the REST API receives bearer tokens: on {addr}, which is not a loopback address, it \
         needs TLS (--rest-tls-cert and --rest-tls-key), or --rest-allow-plain-http to serve \
         plain HTTP anyway (behind a TLS-terminating proxy or service mesh)"
    ))
}

/// The certificate chain and private key files (PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What identifies a version of the two files.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp([(SystemTime, u64, u64); 2]);

fn stamp(files: &TlsFiles) -> std::io::Result<Stamp> {
    let one = |path: &Path| -> std::io::Result<(SystemTime, u64, u64)> {
        let meta = std::fs::metadata(path)?;
        Ok((meta.modified()?, meta.len(), meta.ino()))
    };
    Ok(Stamp([one(&files.cert)?, one(&files.key)?]))
}

/// Loads and checks the pair; errors name the file, never its content.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let cert = files.cert.display();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading the certificates in {cert}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{cert} holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("reading the private key in {}: {e}", files.key.display()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!(
            "the key in {} does not fit the certificate in {cert}: {e}",
            files.key.display()
        )
    })
}

struct Loaded {
    stamp: Stamp,
    key: Arc<CertifiedKey>,
    /// The version that failed to load, so it is reported once.
    failed: Option<Stamp>,
}

/// Serves the loaded pair, loading it again first when the files changed.
struct Reloading {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl fmt::Debug for Reloading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloading")
            .field("files", &self.files)
            .finish()
    }
}

impl Reloading {
    fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(now) = stamp(&self.files) else {
            // Between the writes of a rotation; the next handshake looks again.
            return Arc::clone(&loaded.key);
        };
        if now != loaded.stamp && loaded.failed.as_ref() != Some(&now) {
            match load(&self.files, &self.provider) {
                Ok(key) => {
                    tracing::info!(cert = %self.files.cert.display(), "reloaded the REST API's TLS certificate");
                    *loaded = Loaded {
                        stamp: now,
                        key: Arc::new(key),
                        failed: None,
                    };
                }
                Err(e) => {
                    tracing::warn!(error = %e, "new TLS files for the REST API do not load; serving the previous certificate");
                    loaded.failed = Some(now);
                }
            }
        }
        Arc::clone(&loaded.key)
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The TLS acceptor for `files`; fails when they do not load now.
pub fn acceptor(files: TlsFiles) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(ring::default_provider());
    let stamp = stamp(&files).map_err(|e| format!("reading {}: {e}", files.cert.display()))?;
    let key = Arc::new(load(&files, &provider)?);
    let resolver = Reloading {
        files,
        provider: Arc::clone(&provider),
        loaded: Mutex::new(Loaded {
            stamp,
            key,
            failed: None,
        }),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS connections on `listener` and serves `app` on each, until
/// the process ends.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a REST API connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(error = %e, "REST API connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback_unless_allowed() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        for ok in ["127.0.0.1:8000", "[::1]:8000", "127.0.0.2:0"] {
            assert_eq!(check_listener(addr(ok), false, false), Ok(()), "{ok}");
        }
        let refused = check_listener(addr("0.0.0.0:8000"), false, false).expect_err("plain");
        assert!(refused.contains("--rest-tls-cert"), "{refused}");
        assert!(refused.contains("--rest-allow-plain-http"), "{refused}");
        assert!(check_listener(addr("10.0.0.1:8000"), false, false).is_err());
        assert_eq!(check_listener(addr("0.0.0.0:8000"), true, false), Ok(()));
        assert_eq!(check_listener(addr("[::]:8000"), false, true), Ok(()));
    }

    #[test]
    fn missing_files_are_a_startup_error_naming_the_file() {
        let files = TlsFiles {
            cert: "/nonexistent/tls.crt".into(),
            key: "/nonexistent/tls.key".into(),
        };
        let Err(err) = acceptor(files) else {
            panic!("missing files loaded");
        };
        assert!(err.contains("/nonexistent/tls.crt"), "{err}");
    }
}
