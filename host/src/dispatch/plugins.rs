//! Which component a binding's plugin is: built-ins by name (embedded in the binary), uploads
//! by sha256 from the store. Loaded once into the runtime, then served from its cache.

use std::collections::HashMap;
use std::sync::Arc;

use crate::guests;
use crate::runtime::{LoadError, LoadedPlugin, Runtime, plugin::sha256_hex};

/// Finds and loads plugin components.
pub struct PluginRegistry {
    runtime: Arc<Runtime>,
    builtin_by_sha: HashMap<String, &'static [u8]>,
    builtin_sha_by_name: HashMap<&'static str, String>,
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
        PluginRegistry { runtime, builtin_by_sha, builtin_sha_by_name }
    }

    /// The runtime plugins run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The sha256 of a built-in plugin.
    pub fn builtin_sha(&self, name: &str) -> Option<&str> {
        self.builtin_sha_by_name.get(name).map(String::as_str)
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
