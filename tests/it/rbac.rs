//! The sample Roles of `deploy/examples/rbac/` (docs/rbac.md), applied to
//! the real apiserver: each file with its namespaces (`team-a`,
//! `aicore-system`) replaced by test namespaces and its groups and
//! cluster-scoped names made unique, then asked with SubjectAccessReviews,
//! as a user of the file's group, whether it grants what the doc says and
//! nothing beside it (other namespaces, other resources, status writes,
//! pods). The doc's own `kubectl auth can-i` lines are run as written, with
//! the test's names, and a few real `kubectl --as` calls show the answers
//! hold for requests. No operator runs: RBAC alone is under test.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::{Value, json};

use crate::harness::{
    TestNamespace, client, expect_success, kubectl, repo_root, scratch_dir, unique_suffix, wait_for,
};
use crate::operator::{REACT, install_crd};

const EXAMPLES: &str = "deploy/examples";
const DOC: &str = "docs/rbac.md";
/// The namespaces and groups the sample files are written for.
const RG_NS: &str = "team-a";
const TENANT_NS: &str = "aicore-system";
const DEVELOPERS: &str = "team-a-developers";
const RG_ADMINS: &str = "team-a-admins";
const TENANT_ADMINS: &str = "aicore-tenant-admins";

const GS: &str = "genericsecrets.aicore.dev";
const GS_STATUS: &str = "genericsecrets.aicore.dev/status";
const READ: &[&str] = &["get", "list", "watch"];
/// What the admin Roles grant on `genericsecrets` and `secrets`.
const READ_WRITE: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const EVERY_VERB: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// How the example names of the sample files become this test's.
struct Rename {
    /// Example namespace → test namespace.
    namespaces: BTreeMap<&'static str, String>,
    /// Appended to the groups and to the names of cluster-scoped objects.
    suffix: String,
}

impl Rename {
    fn new(namespaces: &[(&'static str, &str)]) -> Self {
        Self {
            namespaces: namespaces
                .iter()
                .map(|(example, test)| (*example, (*test).to_owned()))
                .collect(),
            suffix: unique_suffix(),
        }
    }

    fn unique(&self, example: &str) -> String {
        format!("{example}-{}", self.suffix)
    }

    fn namespace(&self, example: &str, file: &str) -> String {
        self.namespaces
            .get(example)
            .unwrap_or_else(|| panic!("{file}: namespace {example} has no test namespace"))
            .clone()
    }
}

/// The documents of `deploy/examples/<file>`, renamed: `metadata.namespace`
/// to the test namespaces, the names of the file's cluster-scoped objects
/// (and the role references to them) and the subjects made unique.
fn load(file: &str, rename: &Rename) -> Vec<Value> {
    let path = repo_root().join(EXAMPLES).join(file);
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut docs: Vec<Value> = serde_saphyr::from_multiple::<Value>(&yaml)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .into_iter()
        .filter(|document| !document.is_null())
        .collect();
    let cluster_roles: BTreeSet<String> = docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole")
        .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    for doc in &mut docs {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        let text = |value: &Value, what: &str| {
            value
                .as_str()
                .unwrap_or_else(|| panic!("{file}: {kind} without {what}"))
                .to_owned()
        };
        // docs/rbac.md: not aggregated into the built-in admin, edit and
        // view roles (which leave Secrets out on purpose).
        let labels = doc["metadata"]["labels"].as_object().into_iter().flatten();
        for (label, _) in labels {
            assert!(
                !label.starts_with("rbac.authorization.k8s.io/aggregate-to-"),
                "{file}: {kind} is aggregated into a built-in role ({label})"
            );
        }
        let metadata = &mut doc["metadata"];
        if metadata.get("namespace").is_some() {
            let example = text(&metadata["namespace"], "metadata.namespace");
            metadata["namespace"] = json!(rename.namespace(&example, file));
        } else {
            assert!(
                matches!(kind.as_str(), "ClusterRole" | "ClusterRoleBinding"),
                "{file}: {kind} without a namespace"
            );
            let name = text(&metadata["name"], "metadata.name");
            metadata["name"] = json!(rename.unique(&name));
        }
        // get_mut: indexing a missing key mutably would insert a null.
        if let Some(role_ref) = doc.get_mut("roleRef") {
            let name = text(&role_ref["name"], "roleRef.name");
            if role_ref["kind"] == "ClusterRole" && cluster_roles.contains(&name) {
                role_ref["name"] = json!(rename.unique(&name));
            }
        }
        let subjects = doc.get_mut("subjects").and_then(Value::as_array_mut);
        for subject in subjects.into_iter().flatten() {
            match subject["kind"].as_str() {
                Some("Group" | "User") => {
                    let name = text(&subject["name"], "subject name");
                    subject["name"] = json!(rename.unique(&name));
                }
                Some("ServiceAccount") => {
                    let ns = text(&subject["namespace"], "subject namespace");
                    subject["namespace"] = json!(rename.namespace(&ns, file));
                }
                other => panic!("{file}: subject of kind {other:?}"),
            }
        }
    }
    // A namespace written anywhere else than where it is replaced would
    // send the test's grants to the example namespace.
    let text = serde_json::to_string(&docs).expect("JSON");
    for example in [RG_NS, TENANT_NS] {
        assert!(
            !text.contains(&format!("\"{example}\"")),
            "{file}: {example} left after renaming: {text}"
        );
    }
    docs
}

/// Objects applied with `kubectl apply`; the cluster-scoped ones (which
/// outlive the test namespaces) are deleted by [`Applied::cleanup`], or on
/// drop if the test panics.
struct Applied {
    cluster_scoped: Vec<String>,
    deleted: bool,
}

impl Applied {
    fn delete(&self) -> Option<Output> {
        if self.cluster_scoped.is_empty() {
            return None;
        }
        let mut args = vec!["delete", "--ignore-not-found", "--wait=false"];
        args.extend(self.cluster_scoped.iter().map(String::as_str));
        Some(kubectl(args))
    }

    fn cleanup(mut self) {
        self.deleted = true;
        if let Some(out) = self.delete() {
            expect_success(&out, "deleting the cluster-scoped objects");
        }
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = self.delete();
        }
    }
}

/// `kubectl apply` of `docs` as admin.
fn apply(docs: &[Value]) -> Applied {
    let cluster_scoped = docs
        .iter()
        .filter(|d| d["metadata"]["namespace"].is_null())
        .map(|d| {
            let kind = d["kind"].as_str().expect("kind").to_ascii_lowercase();
            let name = d["metadata"]["name"].as_str().expect("name");
            format!("{kind}.rbac.authorization.k8s.io/{name}")
        })
        .collect();
    let applied = Applied {
        cluster_scoped,
        deleted: false,
    };
    let path = scratch_dir().join(format!("rbac-{}.json", unique_suffix()));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": docs});
    std::fs::write(&path, list.to_string()).expect("writing the manifest");
    let out = kubectl(["apply", "-f", &path.to_string_lossy()]);
    let stdout = expect_success(&out, "kubectl apply");
    eprintln!("$ kubectl apply -f <renamed sample>\n{stdout}");
    applied
}

/// One question to the authorizer, for each of `verbs`: `resource` is
/// spelled `resource[.group][/subresource]` as with `kubectl auth can-i`,
/// `ns` empty means cluster-scoped or all namespaces, `name` empty any name.
#[derive(Debug, Clone)]
struct Case {
    allowed: bool,
    ns: String,
    verbs: &'static [&'static str],
    resource: &'static str,
    name: String,
}

fn yes(ns: &str, verbs: &'static [&'static str], resource: &'static str) -> Case {
    Case {
        allowed: true,
        ns: ns.to_owned(),
        verbs,
        resource,
        name: String::new(),
    }
}

fn no(ns: &str, verbs: &'static [&'static str], resource: &'static str) -> Case {
    Case {
        allowed: false,
        ..yes(ns, verbs, resource)
    }
}

impl Case {
    fn named(self, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..self
        }
    }
}

/// A user in one group (and `system:authenticated`, as every real user).
struct Who {
    user: &'static str,
    group: String,
}

impl Who {
    async fn can(&self, client: &Client, case: &Case, verb: &str) -> bool {
        let (resource, subresource) = match case.resource.split_once('/') {
            Some((resource, sub)) => (resource, Some(sub.to_owned())),
            None => (case.resource, None),
        };
        let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let review = SubjectAccessReview {
            metadata: ObjectMeta::default(),
            spec: SubjectAccessReviewSpec {
                user: Some(self.user.to_owned()),
                groups: Some(vec![self.group.clone(), "system:authenticated".into()]),
                resource_attributes: Some(ResourceAttributes {
                    namespace: some(&case.ns),
                    verb: Some(verb.to_owned()),
                    group: Some(group.to_owned()),
                    resource: Some(resource.to_owned()),
                    subresource,
                    name: some(&case.name),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            status: None,
        };
        Api::<SubjectAccessReview>::all(client.clone())
            .create(&PostParams::default(), &review)
            .await
            .expect("SubjectAccessReview")
            .status
            .is_some_and(|status| status.allowed)
    }

    fn describe(&self, case: &Case, verb: &str) -> String {
        let name = if case.name.is_empty() {
            String::new()
        } else {
            format!(" {}", case.name)
        };
        let ns = if case.ns.is_empty() {
            " (cluster / all namespaces)".to_owned()
        } else {
            format!(" -n {}", case.ns)
        };
        format!(
            "{} ({}) {verb} {}{name}{ns}",
            self.user, self.group, case.resource
        )
    }

    /// Waits until every allowed case is allowed (the authorizer sees new
    /// RBAC objects a little later; every binding has an allowed case),
    /// then asserts every case, each verb, has the expected answer.
    async fn assert_access(&self, client: &Client, cases: &[Case]) {
        wait_for(
            &format!("the grants of {} to take effect", self.group),
            REACT,
            || async {
                for case in cases.iter().filter(|case| case.allowed) {
                    for verb in case.verbs {
                        if !self.can(client, case, verb).await {
                            return Err(self.describe(case, verb));
                        }
                    }
                }
                Ok(())
            },
        )
        .await;
        let mut wrong = Vec::new();
        let mut checked = 0;
        for case in cases {
            for verb in case.verbs {
                checked += 1;
                let allowed = self.can(client, case, verb).await;
                if allowed != case.allowed {
                    let answer = if allowed { "yes" } else { "no" };
                    wrong.push(format!("{}: {answer}", self.describe(case, verb)));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "wrong answers of the authorizer:\n{}",
            wrong.join("\n")
        );
        eprintln!("{}: {checked} access reviews as documented", self.group);
    }

    /// `kubectl <args> --as <user> --as-group <group>`.
    fn kubectl(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--as", self.user, "--as-group", &self.group]);
        kubectl(all)
    }
}

/// The cases of docs/rbac.md's table for the Role of `resource-group-admin.yaml`
/// and the first Role of `tenant-admin.yaml`, bound in `ns`: read and write
/// `genericsecrets` and `secrets`, `get` the status and never write it,
/// read events, nothing in `elsewhere` nor cluster-wide.
fn admin_cases(ns: &str, elsewhere: &str) -> Vec<Case> {
    vec![
        yes(ns, READ_WRITE, GS),
        yes(ns, READ_WRITE, GS).named("team-a-token"),
        no(ns, &["deletecollection"], GS),
        yes(ns, &["get"], GS_STATUS).named("team-a-token"),
        no(ns, &["update", "patch"], GS_STATUS).named("team-a-token"),
        no(ns, &["create", "update", "patch", "delete"], GS_STATUS),
        yes(ns, READ_WRITE, "secrets"),
        no(ns, &["deletecollection"], "secrets"),
        yes(ns, READ, "events"),
        yes(ns, READ, "events.events.k8s.io"),
        no(ns, &["create", "update", "patch", "delete"], "events"),
        no(
            ns,
            &["create", "update", "patch", "delete"],
            "events.events.k8s.io",
        ),
        // Nothing else in the namespace: no pods (which read every Secret),
        // no workloads, no way to grant itself more.
        no(ns, &["create"], "pods"),
        no(ns, &["create"], "deployments.apps"),
        no(ns, &["get", "list"], "configmaps"),
        no(
            ns,
            &["create", "bind", "escalate"],
            "roles.rbac.authorization.k8s.io",
        ),
        no(ns, &["create"], "rolebindings.rbac.authorization.k8s.io"),
        // Nothing elsewhere.
        no(elsewhere, EVERY_VERB, GS),
        no(elsewhere, &["get"], GS_STATUS),
        no(elsewhere, EVERY_VERB, "secrets"),
        no(elsewhere, READ, "events"),
        no("", READ, GS),
        no("", READ, "secrets"),
        no("", EVERY_VERB, "namespaces"),
    ]
}

/// The `kubectl auth can-i` lines of docs/rbac.md ("Checking a Role") whose
/// `--as-group` is one of `groups`, with the test's namespaces and groups:
/// run, their answer must be the one in the line's comment.
fn run_doc_lines(rename: &Rename, groups: &[&str]) {
    let doc = std::fs::read_to_string(repo_root().join(DOC)).expect("docs/rbac.md");
    let lines: Vec<&str> = doc
        .lines()
        .filter(|line| line.starts_with("kubectl auth can-i "))
        .collect();
    assert!(!lines.is_empty(), "{DOC} has no kubectl auth can-i lines");
    let mut run = 0;
    for line in lines {
        let (command, expected) = line
            .split_once('#')
            .unwrap_or_else(|| panic!("{DOC}: no # yes/no after {line}"));
        let expected = expected.trim();
        assert!(
            matches!(expected, "yes" | "no"),
            "{DOC}: {line} ends in {expected}"
        );
        let words: Vec<&str> = command.split_whitespace().skip(1).collect();
        let group = words
            .windows(2)
            .find(|w| w[0] == "--as-group")
            .map(|w| w[1])
            .unwrap_or_else(|| panic!("{DOC}: no --as-group in {line}"));
        assert!(
            [DEVELOPERS, RG_ADMINS, TENANT_ADMINS].contains(&group),
            "{DOC}: {line} is for a group of no sample file"
        );
        if !groups.contains(&group) {
            continue;
        }
        let mut args: Vec<String> = Vec::new();
        for word in words {
            let previous = args.last().map(String::as_str);
            let word = match previous {
                Some("-n") => rename.namespace(word, DOC),
                Some("--as-group") => rename.unique(word),
                _ => word.to_owned(),
            };
            args.push(word);
        }
        let out = kubectl(&args);
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        eprintln!("$ kubectl {}\n{answer}", args.join(" "));
        assert_eq!(
            answer,
            expected,
            "{DOC}: `{}` answers {answer:?} ({})",
            command.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        run += 1;
    }
    assert!(run > 0, "{DOC} has no line for {groups:?}");
}

fn assert_forbidden(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("forbidden"),
        "{what} should be forbidden: {} {stderr}",
        out.status
    );
}

async fn create_secret(client: &Client, ns: &str, name: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        string_data: Some([("token".to_owned(), "t0p".to_owned())].into()),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("creating Secret {ns}/{name}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn app_team_role_gets_its_named_replicas_only() {
    install_crd();
    let rg = TestNamespace::new("rbac-app").await;
    let other = TestNamespace::new("rbac-app-other").await;
    let (rg_ns, other_ns) = (rg.name(), other.name());
    let rename = Rename::new(&[(RG_NS, rg_ns)]);
    let applied = apply(&load("rbac/app-team.yaml", &rename));
    let client = client().await;
    let jane = Who {
        user: "jane",
        group: rename.unique(DEVELOPERS),
    };
    jane.assert_access(
        &client,
        &[
            yes(rg_ns, &["get"], "secrets").named("object-store-creds"),
            yes(rg_ns, &["get"], "secrets").named("team-a-token"),
            // No list or watch: RBAC cannot select the replicas by label.
            no(
                rg_ns,
                &["list", "watch", "create", "deletecollection"],
                "secrets",
            ),
            no(rg_ns, &["update", "patch", "delete"], "secrets").named("object-store-creds"),
            no(rg_ns, &["get"], "secrets").named("another-secret"),
            no(rg_ns, EVERY_VERB, GS),
            no(rg_ns, READ, GS).named("team-a-token"),
            no(rg_ns, &["get"], GS_STATUS).named("team-a-token"),
            no(rg_ns, READ, "events"),
            no(rg_ns, &["create"], "pods"),
            no(rg_ns, &["create"], "deployments.apps"),
            no(other_ns, &["get"], "secrets").named("object-store-creds"),
            no(other_ns, EVERY_VERB, "secrets"),
            no(other_ns, READ, GS),
            no("", READ, "secrets"),
            no("", READ, GS),
            no("", READ, "namespaces"),
        ],
    )
    .await;
    run_doc_lines(&rename, &[DEVELOPERS]);

    // What the doc says of real requests: the named replica can be read,
    // the list is forbidden, and so is the same name in another namespace.
    create_secret(&client, rg_ns, "object-store-creds").await;
    create_secret(&client, other_ns, "object-store-creds").await;
    let get = jane.kubectl(&["get", "secret", "object-store-creds", "-n", rg_ns]);
    expect_success(
        &get,
        "kubectl get secret object-store-creds as the app team",
    );
    let list = jane.kubectl(&["get", "secrets", "-n", rg_ns]);
    assert_forbidden(&list, "kubectl get secrets as the app team");
    let elsewhere = jane.kubectl(&["get", "secret", "object-store-creds", "-n", other_ns]);
    assert_forbidden(&elsewhere, "reading a Secret of another namespace");

    applied.cleanup();
    other.cleanup().await;
    rg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_group_admin_role_manages_its_namespace_only() {
    install_crd();
    let rg = TestNamespace::new("rbac-rg").await;
    let other = TestNamespace::new("rbac-rg-other").await;
    let (rg_ns, other_ns) = (rg.name(), other.name());
    let rename = Rename::new(&[(RG_NS, rg_ns)]);
    let applied = apply(&load("rbac/resource-group-admin.yaml", &rename));
    let client = client().await;
    let bob = Who {
        user: "bob",
        group: rename.unique(RG_ADMINS),
    };
    bob.assert_access(&client, &admin_cases(rg_ns, other_ns))
        .await;
    run_doc_lines(&rename, &[RG_ADMINS]);

    // The example resource-group secret, applied as the admin: allowed in
    // its namespace, forbidden in another; its status cannot be written.
    let example = scratch_dir().join(format!("rbac-gs-{}.json", unique_suffix()));
    let mut docs = load("resource-group-secret.yaml", &rename);
    assert_eq!(docs.len(), 1, "one GenericSecret");
    std::fs::write(&example, docs[0].to_string()).expect("writing the GenericSecret");
    let example = example.to_string_lossy().into_owned();
    let out = bob.kubectl(&["apply", "-f", &example]);
    expect_success(
        &out,
        "kubectl apply of the example GenericSecret as its admin",
    );
    let status = bob.kubectl(&[
        "patch",
        "genericsecret",
        "team-a-token",
        "-n",
        rg_ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"observedGeneration":1}}"#,
    ]);
    assert_forbidden(&status, "patching the status as the admin");
    expect_success(
        &bob.kubectl(&["delete", "genericsecret", "team-a-token", "-n", rg_ns]),
        "kubectl delete genericsecret as its admin",
    );
    docs[0]["metadata"]["namespace"] = json!(other_ns);
    std::fs::write(&example, docs[0].to_string()).expect("writing the GenericSecret");
    let out = bob.kubectl(&["apply", "-f", &example]);
    assert_forbidden(&out, "creating a GenericSecret in another namespace");

    applied.cleanup();
    other.cleanup().await;
    rg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_admin_roles_manage_the_tenant_and_read_resource_groups() {
    install_crd();
    let tenant = TestNamespace::new("rbac-tenant").await;
    let rg = TestNamespace::new("rbac-tenant-rg").await;
    let other = TestNamespace::new("rbac-tenant-other").await;
    let (tenant_ns, rg_ns, other_ns) = (tenant.name(), rg.name(), other.name());
    let rename = Rename::new(&[(TENANT_NS, tenant_ns), (RG_NS, rg_ns)]);
    let docs = load("rbac/tenant-admin.yaml", &rename);

    // "the same Role in aicore-system" as the resource-group admin's.
    let rules = |docs: &[Value]| {
        let roles: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Role").collect();
        assert_eq!(roles.len(), 1, "one Role");
        roles[0]["rules"].clone()
    };
    let rg_admin = load("rbac/resource-group-admin.yaml", &rename);
    assert_eq!(
        rules(&docs),
        rules(&rg_admin),
        "the tenant admin's Role is the resource-group admin's"
    );

    let applied = apply(&docs);
    let client = client().await;
    let alice = Who {
        user: "alice",
        group: rename.unique(TENANT_ADMINS),
    };
    // The tenant namespace: as the resource-group admin in its namespace.
    let mut cases = admin_cases(tenant_ns, other_ns);
    cases.extend([
        // Resource groups where the viewer is bound: read GenericSecrets
        // and their status, nothing else.
        yes(rg_ns, READ, GS),
        yes(rg_ns, READ, GS).named("team-a-token"),
        yes(rg_ns, &["get"], GS_STATUS).named("team-a-token"),
        no(rg_ns, WRITE, GS),
        no(rg_ns, &["update", "patch"], GS_STATUS).named("team-a-token"),
        no(rg_ns, EVERY_VERB, "secrets"),
        no(rg_ns, &["get"], "secrets").named("object-store-creds"),
        no(rg_ns, READ, "events"),
        no(rg_ns, &["create"], "pods"),
        // Namespaces: read, cluster-wide; never label one.
        yes("", READ, "namespaces"),
        yes("", &["get"], "namespaces").named(rg_ns),
        no("", WRITE, "namespaces"),
        no("", &["update", "patch"], "namespaces").named(rg_ns),
        no("", &["update", "patch"], "namespaces").named(other_ns),
        // Not the cluster's RBAC.
        no(
            "",
            &["create", "bind", "escalate"],
            "clusterroles.rbac.authorization.k8s.io",
        ),
        no(
            "",
            &["create"],
            "clusterrolebindings.rbac.authorization.k8s.io",
        ),
    ]);
    // admin_cases forbids namespaces cluster-wide; here they are readable.
    cases.retain(|case| !(case.resource == "namespaces" && case.verbs == EVERY_VERB));
    alice.assert_access(&client, &cases).await;
    run_doc_lines(&rename, &[TENANT_ADMINS]);

    // Real requests: list the resource group's GenericSecrets and the
    // namespaces; not every namespace's GenericSecrets, no labelling.
    expect_success(
        &alice.kubectl(&["get", "genericsecrets", "-n", rg_ns]),
        "listing a resource group's GenericSecrets as the tenant admin",
    );
    expect_success(
        &alice.kubectl(&["get", "namespaces", "-l", "aicore.dev/resource-group"]),
        "listing the resource groups as the tenant admin",
    );
    assert_forbidden(
        &alice.kubectl(&["get", "genericsecrets", "-A"]),
        "listing every namespace's GenericSecrets",
    );
    assert_forbidden(
        &alice.kubectl(&[
            "label",
            "namespace",
            other_ns,
            "aicore.dev/resource-group=rg-x",
        ]),
        "labelling a namespace as the tenant admin",
    );

    applied.cleanup();
    other.cleanup().await;
    rg.cleanup().await;
    tenant.cleanup().await;
}
