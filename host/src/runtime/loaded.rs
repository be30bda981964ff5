//! The compiled plugins kept in memory, by sha256: at most `capacity`, the least recently used
//! dropped first. A dropped plugin is only a cache miss: the next call loads it again from the
//! compile cache on disk (a deserialize: 0.1 ms for Rust, 3 ms for Python, NOTES.md), and
//! whoever still holds its `Arc` keeps using it.

use std::collections::HashMap;
use std::sync::Arc;

use super::LoadedPlugin;

pub(crate) struct LoadedSet {
    capacity: usize,
    /// Ticks on every use; an entry's tick says when it was last used.
    tick: u64,
    entries: HashMap<String, (Arc<LoadedPlugin>, u64)>,
}

impl LoadedSet {
    pub(crate) fn new(capacity: usize) -> Self {
        LoadedSet { capacity: capacity.max(1), tick: 0, entries: HashMap::new() }
    }

    /// The plugin with this sha256, marked used.
    pub(crate) fn get(&mut self, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(sha256).map(|(plugin, used)| {
            *used = tick;
            plugin.clone()
        })
    }

    /// Keep `plugin` (or the one already kept under its sha256, which is returned), dropping
    /// the least recently used beyond the capacity. A scan of at most `capacity` entries, on
    /// a load only (which costs far more).
    pub(crate) fn insert(&mut self, plugin: Arc<LoadedPlugin>) -> Arc<LoadedPlugin> {
        if let Some(kept) = self.get(&plugin.sha256) {
            return kept;
        }
        while self.entries.len() >= self.capacity {
            let oldest = self.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(sha, _)| sha.clone());
            match oldest {
                Some(sha) => self.entries.remove(&sha),
                None => break,
            };
        }
        self.tick += 1;
        self.entries.insert(plugin.sha256.clone(), (plugin.clone(), self.tick));
        plugin
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
