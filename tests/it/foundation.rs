//! The control plane itself behaves like a real cluster: storage, namespace
//! deletion, garbage collection, RBAC, and the built kubectl.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};

use crate::harness::{
    DEFAULT_TIMEOUT, TestNamespace, api_error_code, client, developer_client, expect_success,
    kubectl, wait_deleted, wait_for,
};

fn secret(name: &str, data: &[(&str, &[u8])]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(key, value)| ((*key).to_owned(), ByteString(value.to_vec())))
                .collect(),
        ),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    }
}

fn config_map(name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    let owner_references = owner.map(|owner| {
        vec![OwnerReference {
            api_version: "v1".to_owned(),
            kind: "ConfigMap".to_owned(),
            name: owner.metadata.name.clone().expect("owner has a name"),
            uid: owner.metadata.uid.clone().expect("owner has a uid"),
            ..OwnerReference::default()
        }]
    });
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            owner_references,
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..ConfigMap::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_round_trip() {
    let ns = TestNamespace::new("foundation-secret").await;
    let secrets: Api<Secret> = Api::namespaced(client().await, ns.name());

    secrets
        .create(
            &PostParams::default(),
            &secret(
                "s1",
                &[("username", b"alice"), ("password", b"\x00\xffbinary")],
            ),
        )
        .await
        .expect("create secret");
    let read = secrets.get("s1").await.expect("get secret");
    let data = read.data.expect("secret has data");
    assert_eq!(data.len(), 2, "keys: {:?}", data.keys());
    assert_eq!(data.get("username"), Some(&ByteString(b"alice".to_vec())));
    assert_eq!(
        data.get("password"),
        Some(&ByteString(b"\x00\xffbinary".to_vec()))
    );
    assert_eq!(read.type_.as_deref(), Some("Opaque"));

    ns.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_deletion_completes() {
    let ns = TestNamespace::new("foundation-nsdel").await;
    let name = ns.name().to_owned();
    let client = client().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &name);
    secrets
        .create(&PostParams::default(), &secret("content", &[("k", b"v")]))
        .await
        .expect("create secret");

    // The namespace controller (kube-controller-manager) has to empty the
    // namespace and remove the `kubernetes` finalizer before it disappears.
    ns.cleanup().await;
    let namespaces: Api<Namespace> = Api::all(client);
    wait_deleted(&namespaces, &name, DEFAULT_TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_collector_deletes_dependents() {
    let ns = TestNamespace::new("foundation-gc").await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client().await, ns.name());

    let owner = config_maps
        .create(&PostParams::default(), &config_map("owner", None))
        .await
        .expect("create owner");
    config_maps
        .create(
            &PostParams::default(),
            &config_map("dependent", Some(&owner)),
        )
        .await
        .expect("create dependent");
    let bystander = config_maps
        .create(&PostParams::default(), &config_map("bystander", None))
        .await
        .expect("create bystander");

    config_maps
        .delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    wait_deleted(&config_maps, "dependent", DEFAULT_TIMEOUT).await;

    let still_there = config_maps
        .get("bystander")
        .await
        .expect("bystander is not collected");
    assert_eq!(still_there.metadata.uid, bystander.metadata.uid);

    ns.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn developer_cannot_read_secrets() {
    let ns = TestNamespace::new("foundation-rbac").await;
    Api::<Secret>::namespaced(client().await, ns.name())
        .create(&PostParams::default(), &secret("private", &[("k", b"v")]))
        .await
        .expect("create secret as admin");

    let secrets: Api<Secret> = Api::namespaced(developer_client().await, ns.name());
    let list = secrets
        .list(&ListParams::default())
        .await
        .expect_err("developer must not list secrets");
    assert_eq!(api_error_code(&list), Some(403), "list: {list}");
    let get = secrets
        .get("private")
        .await
        .expect_err("developer must not get secrets");
    assert_eq!(api_error_code(&get), Some(403), "get: {get}");
    // 403 (not 401) also proves the developer token authenticates.
    assert!(
        get.to_string().contains("\"developer\""),
        "forbidden message names the user: {get}"
    );

    ns.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn built_kubectl_talks_to_the_server() {
    let version = expect_success(&kubectl(["version", "-o", "json"]), "kubectl version");
    let version: serde_json::Value = serde_json::from_str(&version).expect("version JSON");
    let server = version["serverVersion"]["gitVersion"]
        .as_str()
        .expect("serverVersion.gitVersion");
    assert!(server.starts_with("v1.37."), "server version {server}");
    let client = version["clientVersion"]["gitVersion"]
        .as_str()
        .expect("clientVersion.gitVersion");
    assert!(client.starts_with("v1.37."), "kubectl version {client}");

    let readyz = expect_success(&kubectl(["get", "--raw", "/readyz"]), "kubectl get --raw");
    assert_eq!(readyz.trim(), "ok");

    // wait_for itself: a probe that succeeds on its third call.
    let mut calls = 0;
    let value = wait_for("third call", Duration::from_secs(5), || {
        calls += 1;
        let n = calls;
        async move { (n >= 3).then_some(n) }
    })
    .await;
    assert_eq!(value, 3);
}
