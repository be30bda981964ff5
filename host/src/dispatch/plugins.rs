//! Which component a binding's plugin is: built-ins by name (embedded in the binary), uploads
//! by sha256 from the store. Loaded once into the runtime, then served from its cache.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::guests;
use crate::runtime::{LoadError, LoadedPlugin, Runtime, plugin::sha256_hex};

/// Finds and loads plugin components.
pub struct PluginRegistry {
    runtime: Arc<Runtime>,
    builtin_by_sha: HashMap<String, &'static [u8]>,
    builtin_sha_by_name: HashMap<&'static str, String>,
    /// Instance slots checks may use at once (see [`validation_slots`]).
    validation: Arc<Semaphore>,
    /// Woken whenever a background check of an upload ends (bindings waiting for it look again).
    checked: Notify,
}

/// How many of the runtime's `pool` instance slots uploads and config checks may hold at once:
/// a quarter (at least one). With the dispatcher's share (at most half, see `Dispatcher::new`)
/// a flood of checks can never take the slots events need.
pub(crate) fn validation_slots(pool: usize) -> usize {
    (pool / 4).max(1)
}

/// A plugin that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("unknown plugin {0:?}: use a built-in ({1}) or upload it first")]
    Unknown(String, String),
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl PluginRegistry {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        let mut builtin_by_sha = HashMap::new();
        let mut builtin_sha_by_name = HashMap::new();
        for (name, bytes) in guests::BUILTINS {
            let sha = sha256_hex(bytes);
            builtin_by_sha.insert(sha.clone(), *bytes);
            builtin_sha_by_name.insert(*name, sha);
        }
        let validation = Arc::new(Semaphore::new(validation_slots(runtime.config().max_concurrent_instances as usize)));
        PluginRegistry { runtime, builtin_by_sha, builtin_sha_by_name, validation, checked: Notify::new() }
    }

    /// The runtime plugins run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Wait for a slot to check an upload or a config in (run the check while holding it;
    /// a background check takes it along).
    pub async fn validation_slot(&self) -> Option<OwnedSemaphorePermit> {
        // The semaphore is never closed; `None` would only mean it was.
        self.validation.clone().acquire_owned().await.ok()
    }

    /// Say that a background check of an upload ended.
    pub fn checked(&self) {
        self.checked.notify_waiters();
    }

    /// Wait until a background check of an upload ends (any: the caller looks again).
    pub async fn wait_checked(&self) {
        self.checked.notified().await;
    }

    /// The sha256 of a built-in plugin.
    pub fn builtin_sha(&self, name: &str) -> Option<&str> {
        self.builtin_sha_by_name.get(name).map(String::as_str)
    }

    /// Whether `sha` is the sha256 of a built-in (its bytes are in the binary).
    pub fn is_builtin_sha(&self, sha: &str) -> bool {
        self.builtin_by_sha.contains_key(sha)
    }

    /// Load a built-in by name.
    pub fn builtin(&self, name: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        let sha = self
            .builtin_sha(name)
            .ok_or_else(|| PluginError::Unknown(name.to_string(), guests::builtin_names_listed()))?;
        self.by_sha(sha, None)
    }

    /// Load the plugin with this sha256: a built-in, one already loaded, or `bytes` if given.
    pub fn by_sha(&self, sha: &str, bytes: Option<&[u8]>) -> Result<Arc<LoadedPlugin>, PluginError> {
        if let Some(plugin) = self.runtime.cached(sha) {
            return Ok(plugin);
        }
        if let Some(bytes) = self.builtin_by_sha.get(sha) {
            return Ok(self.runtime.load(bytes)?);
        }
        match bytes {
            Some(bytes) => Ok(self.runtime.load(bytes)?),
            None => Err(PluginError::Unknown(sha.to_string(), guests::builtin_names_listed())),
        }
    }
}

impl PluginRegistry {
    /// Compile (or load from the compile cache) every component an enabled binding uses, one
    /// after the other on a blocking thread, so the first event of each does not wait for it.
    /// `serve` runs it in the background at start; loads are single-flight, so an event that
    /// needs a component meanwhile waits for this compile instead of starting another. At most
    /// `max_loaded_plugins` are warmed (more would only push each other out). Returns how many
    /// were loaded; a component that fails to load is logged and left to its first event.
    pub async fn warm(self: &Arc<Self>, store: &crate::store::Database) -> usize {
        let shas = match store.bound_plugin_shas().await {
            Ok(shas) => shas,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the bound plugins to warm them");
                return 0;
            }
        };
        let mut warmed = 0;
        for sha in shas.into_iter().take(self.runtime.config().max_loaded_plugins) {
            let bytes = if self.is_builtin_sha(&sha) {
                None
            } else {
                match store.plugin_bytes(&sha).await {
                    Ok(Some(bytes)) => Some(bytes),
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(plugin = %sha, error = %e, "cannot read a bound plugin to warm it");
                        continue;
                    }
                }
            };
            let registry = self.clone();
            let loaded =
                tokio::task::spawn_blocking(move || registry.by_sha(&sha, bytes.as_deref()).map(|_| sha)).await;
            match loaded {
                Ok(Ok(_)) => warmed += 1,
                Ok(Err(e)) => tracing::warn!(error = %e, "a bound plugin did not load at start"),
                Err(e) => tracing::warn!(error = %e, "warming a plugin panicked"),
            }
        }
        warmed
    }
}

#[cfg(test)]
mod tests {
    use super::validation_slots;

    #[test]
    fn checks_and_dispatch_together_fit_in_the_instance_pool() {
        for pool in 4..=256 {
            // The dispatcher's most leads in flight (PostgreSQL's, the larger).
            let dispatch = (pool / 2).clamp(1, 8);
            assert!(validation_slots(pool) + dispatch <= pool, "pool {pool}");
        }
    }
}
