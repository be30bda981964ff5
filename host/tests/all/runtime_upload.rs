//! Upload validation refuses what cannot run, with reasons a person can act on.

use funnel_host::guests;
use funnel_host::runtime::{LoadError, Runtime, RuntimeConfig, UploadError};

use crate::support::runtime;

#[test]
fn a_good_component_is_accepted_with_what_it_declares() {
    let runtime = runtime();
    let plugin = runtime.validate_upload(guests::TEST_GUEST).expect("valid");
    assert_eq!(plugin.info.name, "test-guest");
    assert_eq!(plugin.info.version, "0.1.0");
    assert_eq!(plugin.info.capabilities.len(), 5);
    // Loading the same bytes again is served from the cache: the very same plugin.
    let again = runtime.validate_upload(guests::TEST_GUEST).expect("valid");
    assert!(std::sync::Arc::ptr_eq(&plugin, &again));
}

#[test]
fn built_in_plugins_validate() {
    let runtime = runtime();
    for name in funnel_host::guests::builtin_names() {
        let bytes = guests::builtin(name).expect("builtin exists");
        let plugin = runtime.validate_upload(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&plugin.info.name, name);
    }
}

#[test]
fn refuses_empty_garbage_and_core_modules() {
    let runtime = runtime();
    assert_eq!(runtime.validate_upload(b"").unwrap_err(), UploadError::Empty);
    let err = runtime.validate_upload(b"#!/bin/sh\necho hi\n").unwrap_err();
    assert_eq!(err, UploadError::NotWasm);
    assert!(err.to_string().contains("wasm32-wasip2"));
    // The smallest core module: magic + version 1.
    let err = runtime.validate_upload(b"\0asm\x01\0\0\0").unwrap_err();
    assert_eq!(err, UploadError::CoreModule);
    assert!(err.to_string().contains("not a component"), "{err}");
}

#[test]
fn refuses_truncated_component() {
    let runtime = runtime();
    let half = &guests::TEST_GUEST[..guests::TEST_GUEST.len() / 2];
    match runtime.validate_upload(half).unwrap_err() {
        UploadError::Load(LoadError::Compile(_)) => {}
        other => panic!("expected a compile error, got {other:?}"),
    }
}

#[test]
fn refuses_a_component_of_another_world() {
    let runtime = runtime();
    let err = runtime.validate_upload(guests::WRONG_WORLD).unwrap_err();
    assert!(matches!(err, UploadError::Load(LoadError::WrongWorld(_))), "{err:?}");
    assert!(err.to_string().contains("funnel:plugin@0.2.0 or 0.1.0"), "{err}");
}

#[test]
fn refuses_a_describe_that_never_answers() {
    let runtime = runtime();
    let err = runtime.validate_upload(guests::SLOW_DESCRIBE).unwrap_err();
    match &err {
        UploadError::Load(LoadError::Describe(e)) => assert!(e.limit().is_some(), "stopped by a limit: {e}"),
        other => panic!("expected describe to be stopped, got {other:?}"),
    }
}

#[test]
fn refuses_oversized_uploads() {
    let config = RuntimeConfig { max_upload_bytes: 1000, ..RuntimeConfig::default() };
    let runtime = Runtime::new(config).expect("runtime");
    let err = runtime.validate_upload(guests::TEST_GUEST).unwrap_err();
    assert!(matches!(err, UploadError::TooLarge { max: 1000, .. }), "{err:?}");
}

/// The cache holds native code, so a file is deserialized only when this host wrote it: one
/// put there by anything else (here, another component's code under this component's name) is
/// recompiled from the uploaded bytes, never run.
#[test]
fn compile_cache_runs_only_entries_this_host_signed() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("cache");
    let config = RuntimeConfig { cache_dir: Some(dir.clone()), ..RuntimeConfig::default() };
    let writer = Runtime::new(config.clone()).expect("runtime");
    writer.load(guests::TEST_GUEST).expect("loads");
    let entry = |name: &str| {
        std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(name)))
    };
    let test_guest = entry(&funnel_host::runtime::plugin::sha256_hex(guests::TEST_GUEST)).expect("test-guest cached");
    writer.load(guests::FOUR_EMAILS).expect("loads");
    let four_emails = entry(&funnel_host::runtime::plugin::sha256_hex(guests::FOUR_EMAILS)).expect("cached");
    drop(writer);
    std::fs::copy(&four_emails, &test_guest).expect("swapped");

    let reader = Runtime::new(config.clone()).expect("runtime");
    let plugin = reader.load(guests::TEST_GUEST).expect("loads");
    assert_eq!(plugin.info.name, "test-guest", "the swapped file was not run");
    assert_eq!(reader.compiles(), 1, "compiled again from the uploaded bytes");

    // With another key (another host sharing the folder) none of the files is trusted.
    drop(reader);
    std::fs::write(scratch.path().join("cache.key"), [7u8; 32]).expect("key replaced");
    let stranger = Runtime::new(config).expect("runtime");
    stranger.load(guests::FOUR_EMAILS).expect("loads");
    assert_eq!(stranger.compiles(), 1, "another host's entry is not trusted");
}

#[test]
fn compile_cache_on_disk_is_reused() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("cache");
    let config = RuntimeConfig { cache_dir: Some(dir.clone()), ..RuntimeConfig::default() };
    let first = Runtime::new(config.clone()).expect("runtime");
    first.load(guests::TEST_GUEST).expect("loads");
    assert_eq!(first.compiles(), 1, "the first load compiles");
    first.load(guests::TEST_GUEST).expect("loads");
    assert_eq!(first.compiles(), 1, "loading again reuses the loaded plugin");
    let entries: Vec<_> = std::fs::read_dir(&dir).expect("dir").flatten().collect();
    assert_eq!(entries.len(), 1, "one serialized component in the cache");
    drop(first);
    // A second runtime (a restart) loads from the cache file, compiling nothing.
    let second = Runtime::new(config).expect("runtime");
    let plugin = second.load(guests::TEST_GUEST).expect("loads from cache");
    assert_eq!(plugin.info.name, "test-guest");
    assert_eq!(second.compiles(), 0, "served from the cache, not compiled again");
    // Without a cache directory every new runtime compiles.
    let uncached = Runtime::new(RuntimeConfig::default()).expect("runtime");
    uncached.load(guests::TEST_GUEST).expect("loads");
    assert_eq!(uncached.compiles(), 1, "the counter counts real compiles");
}
