//! Compile cache: a component is compiled once and its serialized code kept on disk, keyed by
//! the sha256 of the uploaded bytes and the engine's compatibility hash.
//!
//! A cache file is native code, so it fails closed: each file starts with an HMAC-SHA256 of its
//! name and contents under a key kept *beside* the folder (`<dir>.key`, mode 0600), and a file
//! whose MAC does not check is recompiled from the uploaded bytes, never deserialized. Something
//! that can drop files into the folder (a shared volume, a copied cache, another host) cannot
//! make this host run them without also holding the key; binding the name means even one of our
//! own entries renamed to another component's hash is refused.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::LoadError;

/// Length of the MAC that starts every cache file.
const MAC_LEN: usize = 32;

/// A compile cache folder and the key its entries are signed with.
pub(crate) struct CompileCache {
    dir: PathBuf,
    key: [u8; 32],
}

impl CompileCache {
    /// Open (creating) the folder and its key file `<dir>.key`; a key file that cannot be read
    /// or is not 32 bytes stops the start rather than trusting the folder.
    pub(crate) fn open(dir: &Path) -> Result<Self, LoadError> {
        let engine_error = |what: String| LoadError::Engine(what);
        std::fs::create_dir_all(dir)
            .map_err(|e| engine_error(format!("cannot create cache dir {}: {e}", dir.display())))?;
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| engine_error(format!("cannot resolve cache dir {}: {e}", dir.display())))?;
        let Some(name) = dir.file_name() else {
            return Err(engine_error(format!("the cache dir cannot be {}: choose a folder of its own", dir.display())));
        };
        let mut key_name = name.to_os_string();
        key_name.push(".key");
        let key_path = dir.with_file_name(key_name);
        let key = read_or_create_key(&key_path).map_err(|e| {
            engine_error(format!(
                "cannot use the compile cache key {}: {e}; delete it (and the cache folder {}) to start afresh",
                key_path.display(),
                dir.display()
            ))
        })?;
        Ok(CompileCache { dir, key })
    }

    fn mac(&self, file_name: &str, serialized: &[u8]) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(file_name.as_bytes());
        mac.update(&[0]);
        mac.update(serialized);
        mac
    }

    /// The serialized code in `path` if this host signed it under this name.
    fn read_signed(&self, path: &Path) -> Option<Vec<u8>> {
        let file_name = path.file_name()?.to_str()?;
        let mut contents = std::fs::read(path).ok()?;
        if contents.len() < MAC_LEN {
            return None;
        }
        let serialized = contents.split_off(MAC_LEN);
        self.mac(file_name, &serialized).verify_slice(&contents).ok()?;
        Some(serialized)
    }
}

fn read_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    use rand::RngCore;
    let read = |path: &Path| -> std::io::Result<[u8; 32]> {
        let stored = std::fs::read(path)?;
        stored
            .try_into()
            .map_err(|stored: Vec<u8>| std::io::Error::other(format!("it holds {} bytes, not 32", stored.len())))
    };
    if path.exists() {
        return read(path);
    }
    // Written whole to a file of our own, then linked under the final name: the link either
    // appears with all 32 bytes or fails because another process (or thread) got there first,
    // whose key is then used. Never a half-written key read by a racing start.
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let mut tmp_name = path.as_os_str().to_os_string();
    tmp_name.push(format!(".tmp{}-{:016x}", std::process::id(), rand::rng().next_u64()));
    let tmp = PathBuf::from(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(&key)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e),
    }
}

/// Compile `bytes`, using `cache` when there is one; `compiles` counts the compilations the
/// cache did not spare.
pub(crate) fn compile(
    engine: &Engine,
    cache: Option<&CompileCache>,
    bytes: &[u8],
    sha256: &str,
    compiles: &AtomicU64,
) -> Result<Component, LoadError> {
    let Some(cache) = cache else {
        compiles.fetch_add(1, Ordering::Relaxed);
        return Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")));
    };
    let path = cache_path(engine, &cache.dir, sha256);
    if path.exists() {
        match cache.read_signed(&path) {
            // SAFETY: the MAC proves this host serialized these bytes under this name (the
            // component's sha256 and this engine's compatibility hash); wasmtime additionally
            // checks the header and refuses an incompatible file.
            Some(serialized) => match unsafe { Component::deserialize(engine, &serialized) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compile cache entry");
                    let _ = std::fs::remove_file(&path);
                }
            },
            None => {
                tracing::warn!(path = %path.display(), "compile cache entry not signed by this host: recompiling");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    compiles.fetch_add(1, Ordering::Relaxed);
    let component = Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    match component.serialize() {
        Ok(serialized) => {
            let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let mut contents = cache.mac(file_name, &serialized).finalize().into_bytes().to_vec();
            contents.extend_from_slice(&serialized);
            // Write then rename, so a crash never leaves a torn file under the final name.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, &contents).and_then(|()| std::fs::rename(&tmp, &path)).is_err() {
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
