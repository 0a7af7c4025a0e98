//! The TLS listener (`--rest-tls-cert`/`--rest-tls-key`): it answers over
//! https with a test certificate, picks up a replaced certificate without
//! a restart (as cert-manager rotates it), and plain HTTP on a
//! non-loopback address is a startup error unless allowed.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{REST, Rest, TENANT, secret};
use crate::harness::{scratch_dir, unique_suffix, wait_for};
use crate::operator::{Operator, REACT};

/// A self-signed certificate for 127.0.0.1 and its key, in `dir`.
pub(super) fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN=gso-rest-{name}"),
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// The HTTP status of `GET url` trusting only `ca`, or curl's complaint.
async fn status_trusting(url: &str, ca: &Path) -> Result<u16, String> {
    let out = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(ca)
        .arg(url)
        .output()
        .await
        .expect("running curl");
    match out.status.success() {
        true => String::from_utf8_lossy(&out.stdout)
            .parse()
            .map_err(|e| format!("{e}")),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// Replaces `to` with `from` in one rename, as the kubelet swaps files.
fn replace(from: &Path, to: &Path) {
    let staged = to.with_extension("new");
    std::fs::copy(from, &staged).expect("copying");
    std::fs::rename(&staged, to).expect("renaming");
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_serves_tls_and_reloads_a_replaced_certificate() {
    let dir = scratch_dir().join(format!("rest-tls-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("cert dir");
    let (first_cert, first_key) = make_cert(&dir, "first");
    let (second_cert, second_key) = make_cert(&dir, "second");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    replace(&first_cert, &cert);
    replace(&first_key, &key);
    let mut args = REST.to_vec();
    let (cert_arg, key_arg) = (cert.to_string_lossy(), key.to_string_lossy());
    args.extend(["--rest-tls-cert", &cert_arg, "--rest-tls-key", &key_arg]);
    let op = Operator::start(&args).await;
    let addr = op.rest_addr().await;
    assert!(
        op.logs()
            .lines()
            .any(|l| l.contains("serving the REST API") && l.contains("\"tls\":true"))
    );
    let url = format!("https://{addr}");
    let rest = Rest::at(
        url.clone(),
        vec!["--cacert".into(), first_cert.to_string_lossy().into()],
    );
    rest.post(TENANT, secret("OVER_TLS", &[("k", "tls-value")]))
        .await
        .expect(200);
    assert_eq!(rest.list("", TENANT).await.names(), ["OVER_TLS"]);
    let secrets = format!("{url}/v2/admin/secrets");
    let refused = status_trusting(&secrets, &second_cert)
        .await
        .expect_err("not trusted yet");
    assert!(refused.contains("certificate"), "{refused}");

    // A rotation: the certificate first (it does not fit the old key: the
    // old pair keeps serving), then the key.
    replace(&second_cert, &cert);
    assert_eq!(status_trusting(&secrets, &first_cert).await, Ok(401));
    replace(&second_key, &key);
    wait_for("the new certificate to be served", REACT, || {
        status_trusting(&secrets, &second_cert)
    })
    .await;
    assert!(
        status_trusting(&secrets, &first_cert).await.is_err(),
        "the old one is gone"
    );
    let logs = op.logs();
    assert!(
        logs.contains("do not load; serving the previous certificate"),
        "no warning"
    );
    assert!(
        logs.contains("reloaded the REST API's TLS certificate"),
        "no reload line"
    );

    let rest = Rest::at(
        url,
        vec!["--cacert".into(), second_cert.to_string_lossy().into()],
    );
    assert_eq!(rest.list("", TENANT).await.names(), ["OVER_TLS"]);
    rest.assert_never_returned(&["tls-value"]);
    let _ = std::fs::remove_dir_all(&dir);
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_refuses_to_start_without_tls_off_loopback_or_with_unreadable_files() {
    for (args, says) in [
        (
            vec!["--rest-api", "--rest-addr", "0.0.0.0:0"],
            "--rest-allow-plain-http",
        ),
        (
            vec![
                "--rest-api",
                "--rest-tls-cert",
                "/nonexistent/tls.crt",
                "--rest-tls-key",
                "/nonexistent/tls.key",
            ],
            "/nonexistent/tls.crt",
        ),
    ] {
        let mut op = Operator::start(&args).await;
        let status = op.wait_exited("the operator").await;
        assert!(!status.success(), "{args:?}");
        let logs = op.logs();
        let line = logs
            .lines()
            .find(|l| l.contains("cannot serve the REST API"));
        assert!(line.is_some_and(|l| l.contains(says)), "{args:?}: {logs}");
        op.cleanup().await;
    }
}
