//! Validation of an uploaded component before it is stored: size, that it is a component
//! (not a core module or something else), that it implements the `funnel` world, and that
//! `describe()` answers within limits. Each rejection says what to do about it.

use std::sync::Arc;

use super::{LoadError, LoadedPlugin, Runtime};

/// Why an upload was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("the component is {size} bytes, over the {max}-byte limit; strip debug info or build in release mode")]
    TooLarge { size: usize, max: usize },
    #[error("the body is empty: send the component's bytes (a .wasm file) as the request body")]
    Empty,
    #[error("this is not WebAssembly (no \\0asm header): send the .wasm file built for wasm32-wasip2")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component: build for the wasm32-wasip2 target (or run `wasm-tools component new`)"
    )]
    CoreModule,
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Validate `bytes` and load them.
pub(crate) fn validate(runtime: &Runtime, bytes: &[u8]) -> Result<Arc<LoadedPlugin>, UploadError> {
    precheck(runtime.config().max_upload_bytes, bytes)?;
    Ok(runtime.load(bytes)?)
}

/// The checks that cost nothing (size, header): an upload failing them is refused at once,
/// before anything is compiled or stored.
pub(crate) fn precheck(max: usize, bytes: &[u8]) -> Result<(), UploadError> {
    if bytes.is_empty() {
        return Err(UploadError::Empty);
    }
    if bytes.len() > max {
        return Err(UploadError::TooLarge { size: bytes.len(), max });
    }
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(UploadError::NotWasm);
    }
    // Bytes 4..8 are the version and layer: a core module is version 1, layer 0.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(UploadError::CoreModule);
    }
    Ok(())
}
