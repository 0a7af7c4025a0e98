//! Spec checks the controller repeats in code: the CRD schema enforces them at
//! admission, but objects stored before a schema change, or a cluster whose
//! CRD is outdated, must still get a clear `InvalidSpec` instead of a bad
//! replica. Pure functions, no I/O.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, PAD};
use base64::{DecodeError, alphabet};
use k8s_openapi::ByteString;

use super::{Data, GenericSecretSpec, LABEL_PREFIX, SecretData};

/// Standard padded base64, lenient about unused trailing bits like the Go
/// decoder Kubernetes uses (`YR==` decodes there, so it must here too).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    PAD.with_decode_allow_trailing_bits(true),
);

/// Where the base64 is broken, never what it holds: the decoder's own message
/// quotes the offending character, which would be part of a secret.
fn base64_error(key: &str, e: &DecodeError) -> String {
    let at = match e {
        DecodeError::InvalidByte(offset, _) | DecodeError::InvalidLastSymbol(offset, _) => {
            format!(" (at character {offset})")
        }
        DecodeError::InvalidLength(_) => " (length is not a multiple of 4)".to_owned(),
        DecodeError::InvalidPadding => " (padding)".to_owned(),
    };
    format!("data[{key}] is not valid base64{at}")
}

/// Largest Secret Kubernetes stores (etcd object limit), in bytes.
const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// The Kubernetes object name for an AI Core secret name (DESIGN §4):
/// lowercase, `_` → `-`. `MY_GENERIC_SECRET` → `my-generic-secret`.
pub fn kubernetes_name(ai_core_name: &str) -> String {
    ai_core_name.to_ascii_lowercase().replace('_', "-")
}

/// Decoded inline data, or a message that says what to fix.
pub fn decode_data(data: &SecretData) -> Result<Data, String> {
    if data.0.is_empty() {
        return Err("data must contain at least one key".to_owned());
    }
    let mut decoded = BTreeMap::new();
    let mut total = 0;
    for (key, value) in &data.0 {
        check_data_key(key)?;
        let bytes = BASE64.decode(value).map_err(|e| base64_error(key, &e))?;
        total += bytes.len();
        decoded.insert(key.clone(), ByteString(bytes));
    }
    if total > MAX_SECRET_BYTES {
        return Err(format!(
            "data is {total} bytes decoded; a Secret holds at most {MAX_SECRET_BYTES}"
        ));
    }
    Ok(decoded)
}

/// A valid Secret data key: `[-._a-zA-Z0-9]+`, at most 253 characters.
pub fn check_data_key(key: &str) -> Result<(), String> {
    let valid_chars = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if key.is_empty() || key.len() > 253 || !valid_chars || key == "." || key == ".." {
        return Err(format!(
            "data key {key:?} is not a valid Secret key (alphanumerics, '-', '_', '.'; at most 253)"
        ));
    }
    Ok(())
}

/// Where a valid spec's data comes from: what validation proves, so that a
/// reconcile decodes the data once and never again.
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    /// `spec.data`, decoded.
    Inline(Data),
    /// `spec.dataFrom`: the name of a Secret in the object's namespace.
    Secret(String),
}

/// Everything the schema also says, checked again in code; returns the
/// decoded data (or where to read it).
pub fn validate(spec: &GenericSecretSpec) -> Result<Source, String> {
    let source = match (&spec.data, &spec.data_from) {
        (Some(data), None) => {
            let decoded = decode_data(data)?;
            check_type_keys(&spec.type_, &decoded)?;
            Source::Inline(decoded)
        }
        (None, Some(from)) => Source::Secret(from.secret_ref.name.clone()),
        _ => return Err("exactly one of data or dataFrom must be set".to_owned()),
    };
    for (key, value) in &spec.labels {
        check_label(key, value)?;
    }
    if let Some(name) = &spec.secret_name {
        check_secret_name(name)?;
    }
    Ok(source)
}

/// [`validate`] without the decoded data.
pub fn validate_spec(spec: &GenericSecretSpec) -> Result<(), String> {
    validate(spec).map(drop)
}

/// Keys the apiserver requires for the built-in Secret types: checked up
/// front, so that such a spec is an `InvalidSpec` and not a write that
/// fails with 422 on every retry.
pub fn check_type_keys(type_: &str, data: &Data) -> Result<(), String> {
    let required: &[&str] = match type_ {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/service-account-token" => {
            return Err(
                "type kubernetes.io/service-account-token cannot be replicated (the \
                        apiserver ties such Secrets to a ServiceAccount)"
                    .to_owned(),
            );
        }
        _ => &[],
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| !data.contains_key(*k))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "a Secret of type {type_} needs the data keys {}; missing: {}",
        required.join(", "),
        missing.join(", ")
    ))
}

/// An AI Core label: the key is `ext.ai.sap.com/` plus a label name, and
/// both name and value must be valid Kubernetes label parts, since they are
/// copied onto every replica.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    let Some(name) = key.strip_prefix(LABEL_PREFIX) else {
        return Err(format!("label key {key:?} must start with {LABEL_PREFIX}"));
    };
    if name.is_empty() || !is_label_value(name) {
        return Err(format!(
            "label key {key:?} must be {LABEL_PREFIX} followed by at most 63 alphanumerics, \
             '-', '_' or '.', starting and ending alphanumeric"
        ));
    }
    if !is_label_value(value) {
        return Err(format!(
            "label {key}: value {value:?} must be at most 63 alphanumerics, '-', '_' or '.', \
             starting and ending alphanumeric"
        ));
    }
    Ok(())
}

/// A valid Kubernetes label value: at most 63 alphanumerics, `-`, `_` or
/// `.`, starting and ending alphanumeric; empty is valid.
pub fn is_label_value(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    s.is_empty()
        || s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && alnum(s.chars().next())
            && alnum(s.chars().last())
}

/// AI Core names: alphanumerics, `_` and `-`, starting and ending with an
/// alphanumeric, so that the mapped Kubernetes name is a DNS subdomain.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if name.len() > 253
        || !chars_ok
        || !ends_ok(name.chars().next())
        || !ends_ok(name.chars().last())
    {
        return Err(format!(
            "secretName {name:?} must be alphanumerics, '_' or '-', start and end alphanumeric, at most 253"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DataFrom, Scope, SecretRef};
    use proptest::prelude::*;

    fn spec(data: &[(&str, &str)]) -> GenericSecretSpec {
        GenericSecretSpec {
            scope: Scope::TenantWide,
            secret_name: None,
            type_: "Opaque".into(),
            data: Some(SecretData(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )),
            data_from: None,
            labels: BTreeMap::new(),
            rollout: None,
        }
    }

    #[test]
    fn maps_ai_core_names_to_kubernetes_names() {
        assert_eq!(kubernetes_name("MY_GENERIC_SECRET"), "my-generic-secret");
        assert_eq!(kubernetes_name("my-generic-secret"), "my-generic-secret");
    }

    #[test]
    fn rejects_invalid_base64_naming_the_key() {
        let err = validate_spec(&spec(&[("token", "c2VjcmV0!")])).expect_err("invalid");
        assert!(
            err.contains("data[token] is not valid base64 (at character 8)"),
            "{err}"
        );
        assert!(
            !err.contains('!') && !err.contains("33"),
            "the bad symbol leaked: {err}"
        );
        assert!(decode_data(&SecretData([("k".into(), "YR==".into())].into())).is_ok());
    }

    #[test]
    fn rejects_empty_data_and_bad_keys() {
        assert!(validate_spec(&spec(&[])).is_err());
        let err = validate_spec(&spec(&[("a/b", "YQ==")])).expect_err("bad key");
        assert!(err.contains("not a valid Secret key"), "{err}");
    }

    #[test]
    fn rejects_foreign_label_prefix() {
        let mut s = spec(&[("a", "YQ==")]);
        s.labels.insert("team".into(), "ml".into());
        let err = validate_spec(&s).expect_err("label");
        assert!(err.contains("must start with ext.ai.sap.com/"), "{err}");
    }

    #[test]
    fn label_names_and_values_must_fit_on_a_replica() {
        let mut s = spec(&[("a", "YQ==")]);
        s.labels
            .insert("ext.ai.sap.com/team".into(), "not ok!".into());
        let err = validate_spec(&s).expect_err("bad value");
        assert!(err.contains("value \"not ok!\""), "{err}");
        s.labels.clear();
        s.labels.insert("ext.ai.sap.com/".into(), "x".into());
        assert!(validate_spec(&s).is_err(), "empty label name");
        s.labels.clear();
        s.labels.insert("ext.ai.sap.com/team".into(), String::new());
        assert!(validate_spec(&s).is_ok(), "empty values are valid");
    }

    #[test]
    fn requires_exactly_one_data_source() {
        let mut s = spec(&[("a", "YQ==")]);
        s.data_from = Some(DataFrom {
            secret_ref: SecretRef { name: "src".into() },
        });
        assert!(validate_spec(&s).is_err());
        s.data = None;
        assert!(validate_spec(&s).is_ok());
    }

    proptest! {
        #[test]
        fn any_bytes_roundtrip_through_base64(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let s = spec(&[("k", &BASE64.encode(&bytes))]);
            let decoded = decode_data(s.data.as_ref().expect("data")).expect("valid");
            prop_assert_eq!(&decoded["k"].0, &bytes);
        }

        #[test]
        fn valid_secret_names_map_to_dns_subdomains(name in "[A-Za-z0-9]([A-Za-z0-9_-]{0,40}[A-Za-z0-9])?") {
            prop_assert!(check_secret_name(&name).is_ok());
            let k8s = kubernetes_name(&name);
            prop_assert!(k8s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        }
    }
}
