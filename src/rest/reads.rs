//! List and get from the operator's cache, once the caller's access review
//! allows that verb in the namespace; otherwise (refused, or the cache not
//! synced yet) the read goes to the apiserver as the caller, as it did
//! before the cache: a refused caller gets the apiserver's own 403.
//! A write through this server waits until the cache shows it, so the
//! caller's next read does too.

use std::sync::Arc;

use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;

use super::Server;
use super::access::Verb;
use super::auth::Caller;
use super::cache::{Cache, Written};
use super::error::ApiError;
use super::handlers::Target;
use super::objects;
use crate::api::GenericSecret;
use crate::api::validation::kubernetes_name;

impl Server {
    /// Whether `target` may be read from the cache for `verb`: the cache is
    /// synced and the caller may `verb` GenericSecrets there.
    async fn may_read_cache(
        &self,
        caller: &Caller,
        target: &Target,
        verb: Verb,
    ) -> Result<bool, ApiError> {
        if self.objects.store().is_none() {
            return Ok(false);
        }
        self.reviews
            .allowed(caller.token(), &target.client, verb, &target.namespace)
            .await
    }

    /// Every object in the target's namespace (a LIST's answer).
    pub(super) async fn list_objects(
        &self,
        caller: &Caller,
        target: &Target,
    ) -> Result<Vec<Arc<GenericSecret>>, ApiError> {
        if self.may_read_cache(caller, target, Verb::List).await?
            && let Some(store) = self.objects.store()
        {
            return Ok(Cache::in_namespace(store, &target.namespace));
        }
        let items = target.api.list(&ListParams::default()).await?.items;
        Ok(items.into_iter().map(Arc::new).collect())
    }

    /// The visible object named `name`, as [`Target::find`] finds it. From
    /// the cache only when it holds the object under its Kubernetes name;
    /// anything else (not there yet, made with kubectl under another name)
    /// is asked of the apiserver, whose list needs the caller's `list`.
    pub(super) async fn find_object(
        &self,
        caller: &Caller,
        target: &Target,
        name: &str,
    ) -> Result<Arc<GenericSecret>, ApiError> {
        if self.may_read_cache(caller, target, Verb::Get).await?
            && let Some(store) = self.objects.store()
        {
            let wanted = kubernetes_name(name);
            let key = ObjectRef::new(&wanted).within(&target.namespace);
            if let Some(gs) = store.get(&key)
                && objects::visible(&gs, target.scope)
                && gs.secret_name() == wanted
            {
                return Ok(gs);
            }
        }
        target.find(name).await.map(Arc::new)
    }

    /// After a write of `namespace/name` by this server: returns once the
    /// cache shows it (bounded), so that the caller reads its own write.
    pub(super) async fn written(&self, target: &Target, name: &str, written: Written) {
        self.objects
            .wait_for(&target.namespace, name, &written)
            .await;
    }
}
