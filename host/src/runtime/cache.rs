//! Compile cache: a component is compiled once and its serialized code kept on disk, keyed by
//! the sha256 of the uploaded bytes and the engine's compatibility hash. Only files this host
//! wrote into its own cache directory are ever deserialized.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::LoadError;

/// Compile `bytes`, using the cache in `dir` when there is one; `compiles` counts the
/// compilations the cache did not spare.
pub(crate) fn compile(
    engine: &Engine,
    dir: Option<&Path>,
    bytes: &[u8],
    sha256: &str,
    compiles: &AtomicU64,
) -> Result<Component, LoadError> {
    let Some(dir) = dir else {
        compiles.fetch_add(1, Ordering::Relaxed);
        return Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")));
    };
    let path = cache_path(engine, dir, sha256);
    if path.exists() {
        // SAFETY: `path` is inside our own cache directory and was written by `serialize`
        // below with this engine's compatibility hash in its name; wasmtime additionally
        // checks the header and refuses an incompatible file.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compile cache entry");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    compiles.fetch_add(1, Ordering::Relaxed);
    let component = Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    match component.serialize() {
        Ok(serialized) => {
            // Write then rename, so a crash never leaves a torn file under the final name.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, &serialized).and_then(|()| std::fs::rename(&tmp, &path)).is_err() {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(path = %path.display(), "could not write compile cache entry");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not serialize compiled component"),
    }
    Ok(component)
}

fn cache_path(engine: &Engine, dir: &Path, sha256: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()))
}
