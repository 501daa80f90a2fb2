//! Recently folded aggregate states, so a command reads only the events after them.
//!
//! The log is append-only, so a state folded at version `v` plus the events after `v` is the
//! current state: a cached entry can be old but never wrong, and every command still reads the
//! stream's tail from the database (several replicas stay correct). Bounded by the events its
//! states were folded from (a state's memory grows with them), with quick_cache's eviction
//! (states used often stay, the others go one by one; no background work on the command path).

use std::any::Any;
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

pub(crate) struct StateCache {
    /// `None`: caching is off.
    entries: Option<Cache<String, Entry, ByEvents>>,
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCache")
            .field("states", &self.entries.as_ref().map(Cache::len))
            .finish()
    }
}

/// A state weighs the events it was folded from, and one for itself.
#[derive(Debug, Clone, Copy)]
struct ByEvents;

impl Weighter<String, Entry> for ByEvents {
    fn weight(&self, _stream: &String, entry: &Entry) -> u64 {
        entry.version.saturating_add(1)
    }
}

#[derive(Clone)]
struct Entry {
    version: u64,
    state: Arc<dyn Any + Send + Sync>,
}

impl StateCache {
    /// A cache of states folded from at most `events` events in all (0 turns it off).
    pub(crate) fn new(events: u64) -> Self {
        // About thirty events a state, for the size of the table.
        let estimated_states = usize::try_from(events / 30).unwrap_or(usize::MAX).max(1);
        let entries =
            (events > 0).then(|| Cache::with_weighter(estimated_states, events, ByEvents));
        Self { entries }
    }

    /// The cached state of a stream and its version, if present and of this type. Shared, not
    /// copied: a command only reads it (a plan's state is dozens of allocations to clone).
    pub(crate) fn get<A: Send + Sync + 'static>(&self, stream_id: &str) -> Option<(Arc<A>, u64)> {
        let entry = self.entries.as_ref()?.get(stream_id)?;
        let state = entry.state.downcast::<A>().ok()?;
        Some((state, entry.version))
    }

    pub(crate) fn put<A: Send + Sync + 'static>(
        &self,
        stream_id: &str,
        version: u64,
        state: Arc<A>,
    ) {
        let Some(entries) = &self.entries else {
            return;
        };
        // Rarely replace a newer state with an older one (a read and a command at once): not
        // atomic, and harmless if it happens, since an old state only costs a longer tail.
        if entries
            .get(stream_id)
            .is_some_and(|existing| existing.version >= version)
        {
            return;
        }
        entries.insert(stream_id.to_owned(), Entry { version, state });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_full_cache_evicts_some_states_not_all() {
        // Room for ten states of nine events.
        let cache = StateCache::new(100);
        for i in 0..30 {
            cache.put(&format!("plan-{i}"), 9, Arc::new(i));
        }
        let kept = (0..30)
            .filter(|i| cache.get::<i32>(&format!("plan-{i}")).is_some())
            .count();
        assert!(
            (5..=10).contains(&kept),
            "a full cache keeps about what fits, never more and never nothing: {kept} states"
        );
        // Heavier states take more room.
        let cache = StateCache::new(100);
        for i in 0..10 {
            cache.put(&format!("plan-{i}"), 49, Arc::new(i));
        }
        let kept = (0..10)
            .filter(|i| cache.get::<i32>(&format!("plan-{i}")).is_some())
            .count();
        assert!(
            (1..=2).contains(&kept),
            "two states of 50 fit in 100: {kept}"
        );
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let cache = StateCache::new(1_000);
        cache.put("plan-1", 5, Arc::new("five"));
        cache.put("plan-1", 3, Arc::new("three"));
        assert_eq!(*cache.get::<&str>("plan-1").unwrap().0, "five");
        cache.put("plan-1", 6, Arc::new("six"));
        assert_eq!(cache.get::<&str>("plan-1").unwrap().1, 6);
    }

    #[test]
    fn a_state_of_another_type_is_not_returned_and_zero_turns_caching_off() {
        let cache = StateCache::new(1_000);
        cache.put("plan-1", 1, Arc::new(1u8));
        assert!(cache.get::<String>("plan-1").is_none());
        let off = StateCache::new(0);
        off.put("plan-1", 1, Arc::new(1u8));
        assert!(off.get::<u8>("plan-1").is_none());
    }
}
