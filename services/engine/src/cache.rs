//! Recently folded aggregate states, so a command reads only the events after them.
//!
//! The log is append-only, so a state folded at version `v` plus the events after `v` is the
//! current state: a cached entry can be old but never wrong, and every command still reads the
//! stream's tail from the database (several replicas stay correct). Bounded: when full it is
//! emptied and refills with the streams in use.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub(crate) struct StateCache {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
}

#[derive(Debug)]
struct Entry {
    version: u64,
    state: Arc<dyn Any + Send + Sync>,
}

impl StateCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached state of a stream and its version, if present and of this type. Shared, not
    /// copied: a command only reads it (a plan's state is dozens of allocations to clone).
    pub(crate) fn get<A: Send + Sync + 'static>(&self, stream_id: &str) -> Option<(Arc<A>, u64)> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.lock().expect("state cache lock poisoned");
        let entry = entries.get(stream_id)?;
        let state = entry.state.clone().downcast::<A>().ok()?;
        Some((state, entry.version))
    }

    pub(crate) fn put<A: Send + Sync + 'static>(
        &self,
        stream_id: &str,
        version: u64,
        state: Arc<A>,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().expect("state cache lock poisoned");
        if entries.len() >= self.capacity && !entries.contains_key(stream_id) {
            entries.clear();
        }
        match entries.get(stream_id) {
            // Never replace a newer state with an older one (concurrent commands).
            Some(existing) if existing.version >= version => {}
            _ => {
                entries.insert(stream_id.to_owned(), Entry { version, state });
            }
        }
    }
}
