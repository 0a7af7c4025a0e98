//! The `GenericSecret` custom resource (group `aicore.dev`, version `v1alpha1`):
//! its spec, status and the schema rules the apiserver enforces. No I/O.

pub mod validation;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Prefix every user label must carry (AI Core rule).
pub const LABEL_PREFIX: &str = "ext.ai.sap.com/";
/// AI Core labels that cannot change once the secret exists.
pub const IMMUTABLE_LABELS: [&str; 2] = [
    "ext.ai.sap.com/document-grounding",
    "ext.ai.sap.com/documentRepositoryType",
];
/// Namespace label that makes a namespace a resource group; its value is the id.
pub const RESOURCE_GROUP_LABEL: &str = "aicore.dev/resource-group";

/// Where a generic secret lives and where its replicas go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Scope {
    /// Main-tenant secret: one Secret in the tenant namespace.
    Tenant,
    /// One Secret in every resource-group namespace, now and later.
    TenantWide,
    /// One Secret in the resource-group namespace the object lives in.
    #[default]
    ResourceGroup,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Tenant => "Tenant",
            Scope::TenantWide => "TenantWide",
            Scope::ResourceGroup => "ResourceGroup",
        }
    }
}

/// Decoded Secret data, in key order.
pub type Data = BTreeMap<String, k8s_openapi::ByteString>;

/// Secret data as base64 strings, keyed by Secret data key.
///
/// `Debug` prints the keys only, so a value can never reach a log line.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretData(pub BTreeMap<String, String>);

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

/// Standard padded base64, the form Kubernetes uses for Secret data.
pub const BASE64_PATTERN: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";

impl JsonSchema for SecretData {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretData".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "Secret data: key -> base64 value. Keys are Secret data keys.",
            "minProperties": 1,
            // Bounds keep the CEL rule's cost estimate within the apiserver's budget.
            "maxProperties": 1024,
            "additionalProperties": {"type": "string", "pattern": BASE64_PATTERN},
            "x-kubernetes-validations": [{
                "rule": "self.all(k, k.size() <= 253 && k.matches('^[-._a-zA-Z0-9]+$'))",
                "message": "data keys must consist of alphanumerics, '-', '_' or '.' (at most 253 characters)"
            }]
        })
    }
}

/// Read the data from a Secret in the same namespace (for GitOps tools that
/// must not keep plaintext in Git, e.g. a sealed-secrets output).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataFrom {
    pub secret_ref: SecretRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A generic secret, as SAP AI Core defines it.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "aicore.dev",
    version = "v1alpha1",
    kind = "GenericSecret",
    namespaced,
    shortname = "gsec",
    status = "GenericSecretStatus",
    doc = "A generic secret (SAP AI Core) replicated into Kubernetes Secrets",
    // Raw JSON: the structured form trips clippy's duplicated_attributes.
    printcolumn = r#"{"name":"Scope","type":"string","jsonPath":".spec.scope"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Replicated","type":"string","jsonPath":".status.replicated"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[x_kube(validation = Rule::new("has(self.data) != has(self.dataFrom)").message("exactly one of data or dataFrom must be set"))]
#[x_kube(validation = Rule::new("self.scope == oldSelf.scope").message("scope is immutable; delete and recreate the GenericSecret to change it"))]
#[x_kube(validation = Rule::new("(has(self.secretName) ? self.secretName : '') == (has(oldSelf.secretName) ? oldSelf.secretName : '')").message("secretName is immutable"))]
#[x_kube(validation = Rule::new("self.type == oldSelf.type").message("type is immutable (Kubernetes cannot change a Secret's type)"))]
#[x_kube(validation = Rule::new("['ext.ai.sap.com/document-grounding', 'ext.ai.sap.com/documentRepositoryType'].all(k, (has(self.labels) && k in self.labels ? self.labels[k] : '') == (has(oldSelf.labels) && k in oldSelf.labels ? oldSelf.labels[k] : ''))").message("labels ext.ai.sap.com/document-grounding and ext.ai.sap.com/documentRepositoryType cannot change after creation"))]
#[serde(rename_all = "camelCase")]
pub struct GenericSecretSpec {
    /// Tenant | TenantWide | ResourceGroup (default). Immutable.
    #[serde(default)]
    pub scope: Scope,
    /// The AI Core name (e.g. MY_GENERIC_SECRET); defaults to metadata.name.
    /// The Secret is named by its lowercase form with '_' replaced by '-'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9_-]{0,251}[A-Za-z0-9])?$"))]
    pub secret_name: Option<String>,
    /// Type of the Secrets written, default Opaque. Immutable.
    #[serde(default = "default_type", rename = "type")]
    #[schemars(length(min = 1, max = 253))]
    pub type_: String,
    /// Base64 values; exclusive with dataFrom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<SecretData>,
    /// Take the data from a Secret in the same namespace; exclusive with data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_from: Option<DataFrom>,
    /// Labels copied onto every replica; keys must start with ext.ai.sap.com/.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k.startsWith('ext.ai.sap.com/'))").message("label keys must start with ext.ai.sap.com/"))]
    pub labels: BTreeMap<String, String>,
    /// Restart the workloads that read the replicas when the data rotates
    /// (opt-in; the installation must allow it, see the chart's `rollout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// Which workloads a rotation restarts: the Deployments, StatefulSets and
/// DaemonSets of a target namespace whose pod template references the
/// replica, once that namespace holds the new data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Also restart workloads that only mount the Secret as a volume. Off by
    /// default: kubelet updates mounted Secrets in place, so only env,
    /// envFrom and subPath references need a restart to see new data.
    #[serde(default)]
    pub include_volume_mounts: bool,
}

fn default_type() -> String {
    "Opaque".to_owned()
}

/// What a target namespace's Secret looks like from this object's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TargetState {
    /// Not yet written with the current data.
    Pending,
    /// Holds exactly the current data.
    Replicated,
    /// Another object's data is there on purpose (AI Core shadowing rule).
    Shadowed,
    /// A Secret of that name exists that the operator does not own.
    Conflict,
    /// Writing failed; see the message.
    Failed,
}

/// One replica, the detail behind `resourceGroupSecretReplicationStatus`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    /// Resource-group id; absent for the tenant namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub namespace: String,
    pub state: TargetState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
}

/// When a resource-group secret started to shadow a tenant-wide one; kept in
/// status so the override time survives operator restarts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShadowStatus {
    /// Tenant-wide object shadowed, `<namespace>/<name>`.
    pub tenant_wide: String,
    /// When this object's data was written over the tenant-wide data.
    pub since: Time,
    /// Generation whose data was written; a new generation shadows anew.
    pub generation: i64,
    /// When the tenant-wide data takes over again.
    pub override_at: Time,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenericSecretStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `sha256:<hex>` of the current data; never the data itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hash: Option<String>,
    /// Resource-group id -> true when that namespace holds the current data
    /// (AI Core shape; TenantWide only).
    // Atomic for server-side apply: the operator always writes it whole, and
    // a granular map costs the apiserver a managed field per resource group
    // on every status write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub resource_group_secret_replication_status: Option<BTreeMap<String, bool>>,
    /// Detail per target namespace: the one target of a Tenant or
    /// ResourceGroup object; for a TenantWide object only the targets that
    /// need a word (shadowed, in conflict, failed), the map has them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_groups: Vec<TargetStatus>,
    /// `<replicated>/<targets>`, for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowStatus>,
    /// The last data versions, newest first (`--rotation-history` of them):
    /// when each was first seen and when every target held it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotations: Vec<Rotation>,
}

/// One version of the data and how it reached the targets. Hashes only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// `sha256:<hex>` of this version's data.
    pub data_hash: String,
    /// When the operator first saw this data.
    pub start_time: Time,
    /// When every target held it; absent while some do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Seconds from `startTime` to `completionTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// Targets that did not hold it yet (as of the last report); 0 once
    /// complete. Left as it was when a newer version superseded it.
    pub pending_targets: i64,
    /// Workloads restarted for this version (`spec.rollout`); absent
    /// without rollout and for an object's first data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<Restarts>,
}

/// The workload restarts of one rotation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Restarts {
    /// Deployments, StatefulSets and DaemonSets restarted.
    pub workloads: i64,
    /// Every target namespace was looked at after the rotation completed;
    /// nothing more is restarted for this version.
    pub done: bool,
}

impl GenericSecretStatus {
    /// The `Ready` condition, if any.
    pub fn ready_condition(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == "Ready")
    }
}

impl GenericSecret {
    /// The AI Core name: `spec.secretName`, else `metadata.name`.
    pub fn ai_core_name(&self) -> &str {
        self.spec
            .secret_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }

    /// The Kubernetes name of its replicas (DESIGN §4).
    pub fn secret_name(&self) -> String {
        validation::kubernetes_name(self.ai_core_name())
    }

    /// `Ready` condition, if reported.
    pub fn ready_condition(&self) -> Option<&Condition> {
        self.status.as_ref()?.ready_condition()
    }
}

/// The CRD as YAML, exactly what `generic-secrets-operator crd` prints and
/// `crds/genericsecret.yaml` holds.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    // Long lines stay one line (CEL rules, messages): no folding.
    let options = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
    serde_saphyr::to_string_with_options(&GenericSecret::crd(), options)
}
