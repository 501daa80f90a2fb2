//! Load → decide → append, with retries on conflict until a deadline.
//!
//! Commands for one stream are carried out one at a time inside a replica (a lock per stream,
//! striped), so a replica's own commands never conflict with each other. Between replicas a
//! command without an expected version that meets a conflict is decided again on fresh state,
//! after a short jittered pause, until it succeeds or its deadline passes (`Busy`: nothing was
//! written, send it again). A command with an expected version reports the conflict at once.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use homeward_store::idempotency::KeyClaim;
use homeward_store::person_keys::PersonKey;
use homeward_store::projection::Projected;
use homeward_store::{
    Append, Appended, EventStore, ExpectedVersion, Metadata, NewEvent, ReadUntil, StoreError,
};
use homeward_workflows::person::Person;
use homeward_workflows::PersonId;
use homeward_workflows::{Aggregate, Context, PartyId};
use thiserror::Error;
use uuid::Uuid;

use crate::authz::AccessDenied;
use crate::cache::StateCache;
use crate::clock::Clock;
use crate::vault::Vault;

/// How long a command without an expected version keeps being decided again after conflicts
/// (other replicas writing the same stream) before it gives up as `Busy`.
pub const DEFAULT_RETRY_DEADLINE: Duration = Duration::from_secs(10);

/// Locks that keep one stream's commands in order inside a replica (a stream maps to one of
/// them; two streams rarely share one, and then only wait for each other).
const STREAM_LOCKS: usize = 4096;

/// How many events the stream states the handler keeps in memory were folded from, in all
/// (a plan of a full return and follow-up is about a hundred).
pub const DEFAULT_CACHED_EVENTS: u64 = 500_000;

/// Who sends a command, its identity, and what version the caller saw (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMeta {
    pub actor: PartyId,
    /// The same id never appends twice.
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    /// The stream version the caller decided on; `None` lets the handler retry on conflict.
    pub expected_version: Option<u64>,
    /// The API request's idempotency key, recorded with the command's events: an append whose
    /// key was used for another request is refused ([`StoreError::KeyTaken`]).
    pub idempotency_key: Option<KeyClaim>,
    /// The partner link the command came through, recorded with its events.
    pub partner_link: Option<Uuid>,
}

impl CommandMeta {
    /// A new command by `actor`, with fresh ids and no expected version.
    pub fn new(actor: PartyId) -> Self {
        let id = Uuid::new_v4();
        Self {
            actor,
            command_id: id,
            correlation_id: id,
            expected_version: None,
            idempotency_key: None,
            partner_link: None,
        }
    }

    /// A command recorded through a partner link: the link's id is the command's id (a link
    /// is used once), and its events say so.
    pub fn through_partner_link(mut self, link_id: Uuid) -> Self {
        self.command_id = link_id;
        self.partner_link = Some(link_id);
        self
    }

    pub fn expecting(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }

    pub fn with_command_id(mut self, command_id: Uuid) -> Self {
        self.command_id = command_id;
        self
    }

    /// Carried out under the request's idempotency key, with the command id derived from it.
    pub fn with_idempotency_key(mut self, claim: KeyClaim) -> Self {
        self.command_id = claim.record.command_id;
        self.idempotency_key = Some(claim);
        self
    }
}

#[derive(Debug, Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The domain refused the command; nothing was written.
    #[error(transparent)]
    Rejected(E),
    /// The stream is not at the version the caller expected (or kept moving while retrying).
    #[error("the plan changed meanwhile (it is at version {actual}, you expected {expected}): reload and try again")]
    Conflict { expected: u64, actual: u64 },
    /// The viewer may not do this to this stream; nothing was written.
    #[error(transparent)]
    Denied(AccessDenied),
    /// Others kept changing the stream until the command's deadline passed; nothing was written
    /// and the same command may be sent again after `retry_after`.
    #[error("the plan is being changed by others at this moment; nothing was written: send the same request again in a few seconds")]
    Busy { retry_after: Duration },
    /// The person's data could not be sealed (they were erased, or their key is unusable);
    /// nothing was written.
    #[error(transparent)]
    Sealing(#[from] crate::vault::VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A command's result: the state after it, and whether it had been handled before.
#[derive(Debug, Clone)]
pub struct Handled<A> {
    /// Shared with the handler's cache (states are read, never changed in place).
    pub state: Arc<A>,
    pub version: u64,
    pub first_version: u64,
    /// True when this command id had already been appended: nothing new was written.
    pub duplicate: bool,
}

/// A stream folded into state.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// Shared with the handler's cache (states are read, never changed in place).
    pub state: Option<Arc<A>>,
    pub version: u64,
}

/// A stream's state as the cache holds it, before its tail is read.
struct Cached<A> {
    stream: String,
    state: Option<Arc<A>>,
    version: u64,
}

/// The events of `stream` among `events`, in their order.
fn tail_of<'a>(
    events: &'a [homeward_store::RecordedEvent],
    stream: &str,
) -> Vec<&'a homeward_store::RecordedEvent> {
    events.iter().filter(|e| e.stream_id == stream).collect()
}

/// A state loaded with the person it is for ([`CommandHandler::load_with_person`]).
#[derive(Debug)]
pub struct WithPerson<A> {
    pub loaded: Loaded<A>,
    /// Her latest state and what the store keeps of her key (`None`: she never had one); no
    /// person at all when her stream does not exist.
    pub person: Option<(Arc<Person>, Option<PersonKey>)>,
}

pub struct CommandHandler<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    vault: Option<Arc<Vault>>,
    retry_deadline: Duration,
    cache: Arc<StateCache>,
    locks: Arc<[tokio::sync::Mutex<()>]>,
}

impl<S: ?Sized> std::fmt::Debug for CommandHandler<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandHandler")
            .field("retry_deadline", &self.retry_deadline)
            .finish_non_exhaustive()
    }
}

impl<S: ?Sized> Clone for CommandHandler<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            clock: self.clock.clone(),
            vault: self.vault.clone(),
            retry_deadline: self.retry_deadline,
            cache: self.cache.clone(),
            locks: self.locks.clone(),
        }
    }
}

impl<S: EventStore + ?Sized> CommandHandler<S> {
    /// A handler that refuses commands recording survivors' data until it is given a vault
    /// ([`CommandHandler::with_vault`]) to seal it with.
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            vault: None,
            retry_deadline: DEFAULT_RETRY_DEADLINE,
            cache: Arc::new(StateCache::new(DEFAULT_CACHED_EVENTS)),
            locks: (0..STREAM_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Seals survivors' data with `vault` before it is stored.
    pub fn with_vault(mut self, vault: Arc<Vault>) -> Self {
        self.vault = Some(vault);
        self
    }

    /// Keeps folded streams in memory up to `events` events folded in all (0 turns the cache
    /// off: every command then folds its whole stream).
    pub fn with_cached_events(mut self, events: u64) -> Self {
        self.cache = Arc::new(StateCache::new(events));
        self
    }

    /// How long a command without an expected version keeps retrying after conflicts before
    /// it gives up as [`CommandError::Busy`] (default [`DEFAULT_RETRY_DEADLINE`]).
    pub fn with_retry_deadline(mut self, deadline: Duration) -> Self {
        self.retry_deadline = deadline;
        self
    }

    /// The lock that keeps `stream_id`'s commands in order in this replica.
    fn stream_lock(&self, stream_id: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        stream_id.hash(&mut hasher);
        &self.locks[(hasher.finish() % self.locks.len() as u64) as usize]
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Where survivors' data is sealed and opened, if this handler records any.
    pub fn vault(&self) -> Option<&Arc<Vault>> {
        self.vault.as_ref()
    }

    /// The handler's clock's time (commands are decided at it).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Folds a stream, whole or up to a version or instant (the aggregate as it stood then).
    pub async fn load<A: Aggregate>(
        &self,
        stream_id: &str,
        until: ReadUntil,
    ) -> Result<Loaded<A>, StoreError> {
        let events = self.store.read_stream(stream_id, until).await?;
        let mut state = None;
        for recorded in &events {
            state = A::apply(state, &recorded.decode::<A::Event>()?);
        }
        Ok(Loaded {
            state: state.map(Arc::new),
            version: events.last().map_or(0, |e| e.stream_version),
        })
    }

    /// The states of several streams, each at least at the version given (what a read model
    /// showed): cached states that are recent enough are used as they are, the others catch up
    /// in one read for all of them. Streams without events are left out.
    pub async fn load_many<A: Aggregate + Send + Sync + 'static>(
        &self,
        wanted: &[(String, u64)],
    ) -> Result<Vec<(String, Loaded<A>)>, StoreError> {
        let mut loaded: Vec<(String, Option<Arc<A>>, u64)> = Vec::with_capacity(wanted.len());
        let mut behind = Vec::new();
        for (stream, at_least) in wanted {
            match self.cache.get::<A>(stream) {
                Some((state, version)) if version >= *at_least => {
                    loaded.push((stream.clone(), Some(state), version));
                }
                Some((state, version)) => {
                    behind.push((stream.clone(), version));
                    loaded.push((stream.clone(), Some(state), version));
                }
                None => {
                    behind.push((stream.clone(), 0));
                    loaded.push((stream.clone(), None, 0));
                }
            }
        }
        let tails = self.store.read_streams_after(&behind).await?;
        let mut by_stream: std::collections::HashMap<&str, Vec<&homeward_store::RecordedEvent>> =
            std::collections::HashMap::new();
        for event in &tails {
            by_stream
                .entry(event.stream_id.as_str())
                .or_default()
                .push(event);
        }
        let mut out = Vec::with_capacity(loaded.len());
        for (stream, state, version) in loaded {
            let tail = by_stream
                .get(stream.as_str())
                .map_or(&[][..], Vec::as_slice);
            let (state, version) = self.caught_up(&stream, state, version, tail)?;
            if state.is_some() {
                out.push((stream, Loaded { state, version }));
            }
        }
        Ok(out)
    }

    /// `state` at `version` with the events of `tail` applied, kept in the cache if any were.
    fn caught_up<A: Aggregate + Send + Sync + 'static>(
        &self,
        stream: &str,
        state: Option<Arc<A>>,
        mut version: u64,
        tail: &[&homeward_store::RecordedEvent],
    ) -> Result<(Option<Arc<A>>, u64), StoreError> {
        if tail.is_empty() {
            return Ok((state, version));
        }
        let mut folded = state.map(Arc::unwrap_or_clone);
        for recorded in tail {
            folded = A::apply(folded, &recorded.decode::<A::Event>()?);
            version = recorded.stream_version;
        }
        let state = folded.map(Arc::new);
        if let Some(s) = &state {
            self.cache.put(stream, version, s.clone());
        }
        Ok((state, version))
    }

    /// The latest state of `stream` and of the person it is for (named by `person_of`), with
    /// what the store keeps of her key: one read when this replica has seen the stream before
    /// (her tail and her key read with its tail), two otherwise. `None` when there is no such
    /// stream.
    pub async fn load_with_person<A: Aggregate + Send + Sync + 'static>(
        &self,
        stream: &str,
        person_of: impl Fn(&A) -> PersonId,
    ) -> Result<Option<WithPerson<A>>, StoreError> {
        let (state, version) = self.cache.get::<A>(stream).unzip();
        let named = state.as_deref().map(&person_of);
        let her = named.map(|person| self.cached_person(person));
        let mut wanted = vec![(stream.to_owned(), version.unwrap_or(0))];
        wanted.extend(her.as_ref().map(|h| (h.stream.clone(), h.version)));
        let mut read = self
            .store
            .read_streams_after_with_keys(
                &wanted,
                &named.map(|p| p.0).into_iter().collect::<Vec<_>>(),
            )
            .await?;
        let (state, version) = self.caught_up(
            stream,
            state,
            version.unwrap_or(0),
            &tail_of(&read.events, stream),
        )?;
        let Some(state) = state else { return Ok(None) };
        let person = person_of(&state);
        let her = match her.filter(|_| named == Some(person)) {
            Some(her) => her,
            None => {
                // Seen for the first time: who she is is known only now.
                let her = self.cached_person(person);
                read = self
                    .store
                    .read_streams_after_with_keys(&[(her.stream.clone(), her.version)], &[person.0])
                    .await?;
                her
            }
        };
        let tail = tail_of(&read.events, &her.stream);
        let (her_state, _) = self.caught_up(&her.stream, her.state, her.version, &tail)?;
        let key = read
            .keys
            .into_iter()
            .find(|(p, _)| *p == person.0)
            .map(|(_, k)| k);
        Ok(Some(WithPerson {
            loaded: Loaded {
                state: Some(state),
                version,
            },
            person: her_state.map(|state| (state, key)),
        }))
    }

    /// Her stream, and her state as this replica's cache holds it (version 0: not at all).
    fn cached_person(&self, person: PersonId) -> Cached<Person> {
        let stream = person.stream_id();
        let (state, version) = self.cache.get::<Person>(&stream).unzip();
        Cached {
            stream,
            state,
            version: version.unwrap_or(0),
        }
    }

    /// The current state of a stream, catching up from the cache (one short read).
    pub async fn load_latest<A: Aggregate + Send + Sync + 'static>(
        &self,
        stream_id: &str,
    ) -> Result<Loaded<A>, StoreError> {
        self.load_current(stream_id).await
    }

    /// The current state of a stream for a command: the cached state plus the events after it.
    async fn load_current<A: Aggregate + Send + Sync + 'static>(
        &self,
        stream_id: &str,
    ) -> Result<Loaded<A>, StoreError> {
        let (cached, mut version) = match self.cache.get::<A>(stream_id) {
            Some((state, version)) => (Some(state), version),
            None => (None, 0),
        };
        let tail = self.store.read_stream_after(stream_id, version).await?;
        if tail.is_empty() {
            return Ok(Loaded {
                state: cached,
                version,
            });
        }
        let mut state = cached.map(Arc::unwrap_or_clone);
        for recorded in tail {
            state = A::apply(state, &recorded.decode::<A::Event>()?);
            version = recorded.stream_version;
        }
        Ok(Loaded {
            state: state.map(Arc::new),
            version,
        })
    }

    /// Carries out `command` on the aggregate in `stream_id`.
    pub async fn handle<A: Projected + Send + Sync + 'static>(
        &self,
        stream_id: &str,
        command: &A::Command,
        meta: CommandMeta,
    ) -> Result<Handled<A>, CommandError<A::Error>> {
        self.handle_authorized(stream_id, command, meta, &|_: Option<&A>| Ok(()))
            .await
    }

    /// Carries out `command` if `allowed` accepts the very state the command is decided on, so
    /// that a permission that depends on the plan (who a step is assigned to) cannot be checked
    /// on one version and used on another.
    pub async fn handle_authorized<A: Projected + Send + Sync + 'static>(
        &self,
        stream_id: &str,
        command: &A::Command,
        meta: CommandMeta,
        allowed: &(dyn Fn(Option<&A>) -> Result<(), AccessDenied> + Send + Sync),
    ) -> Result<Handled<A>, CommandError<A::Error>> {
        let result = self
            .decide_and_append(stream_id, command, meta, allowed)
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(CommandError::Conflict { .. }) => "conflict",
            Err(CommandError::Rejected(_) | CommandError::Denied(_)) => "refused",
            Err(CommandError::Busy { .. }) => "busy",
            Err(CommandError::Sealing(crate::vault::VaultError::Erased)) => "refused",
            Err(CommandError::Sealing(_) | CommandError::Store(_)) => "error",
        };
        metrics::counter!(
            "homeward_commands_total",
            "command" => A::command_name(command),
            "outcome" => outcome
        )
        .increment(1);
        result
    }

    async fn decide_and_append<A: Projected + Send + Sync + 'static>(
        &self,
        stream_id: &str,
        command: &A::Command,
        meta: CommandMeta,
        allowed: &(dyn Fn(Option<&A>) -> Result<(), AccessDenied> + Send + Sync),
    ) -> Result<Handled<A>, CommandError<A::Error>> {
        let _in_order = self.stream_lock(stream_id).lock().await;
        let deadline = Instant::now() + self.retry_deadline;
        let mut attempt: u32 = 0;
        // First, decide on the cached state without reading the tail. The append checks the
        // version it was decided on, so a stale cache costs one conflict and a retry on fresh
        // state (not counted as an attempt), never a wrong write.
        let mut try_cache = true;
        loop {
            let cached = if try_cache {
                try_cache = false;
                self.cache.get::<A>(stream_id)
            } else {
                None
            };
            let from_cache = cached.is_some();
            if !from_cache {
                attempt += 1;
            }
            let Loaded { state, version } = match cached {
                Some((state, version)) => Loaded {
                    state: Some(state),
                    version,
                },
                None => self.load_current::<A>(stream_id).await?,
            };
            if let Some(expected) = meta.expected_version {
                if expected > version && from_cache {
                    // The cache may be behind what the caller saw: look at the stream.
                    continue;
                }
                if expected != version {
                    let conflict = CommandError::Conflict {
                        expected,
                        actual: version,
                    };
                    return self.earlier_result_or(&meta, conflict).await;
                }
            }
            if let Err(denied) = allowed(state.as_deref()) {
                if from_cache {
                    continue;
                }
                return Err(CommandError::Denied(denied));
            }
            let ctx = Context {
                now: self.clock.now(),
                actor: meta.actor,
            };
            let events = match A::decide(state.as_deref(), command, &ctx) {
                Ok(events) => events,
                // A refusal must come from the current state, not a possibly older cached one.
                Err(_) if from_cache => continue,
                // A retried command may be refused now because it already happened (consent
                // already recorded): then the caller gets the first result, not the refusal.
                Err(refusal) => {
                    return self
                        .earlier_result_or(&meta, CommandError::Rejected(refusal))
                        .await
                }
            };
            if events.is_empty() {
                return match state {
                    Some(state) => Ok(Handled {
                        state,
                        version,
                        first_version: version,
                        duplicate: false,
                    }),
                    // decide never accepts a command on an empty stream without events.
                    None => Err(CommandError::Store(StoreError::Unexpected(
                        "no events for a new stream".into(),
                    ))),
                };
            }
            // The one copy a command makes of its state: the cached one stays as it was.
            let mut after = events
                .iter()
                .fold(state.as_deref().cloned(), |s, e| A::apply(s, e))
                .ok_or_else(|| StoreError::Unexpected("events did not open the stream".into()))?;
            let mut new_events: Vec<NewEvent> = events.iter().map(NewEvent::from_domain).collect();
            // Her search terms, from her details before they are sealed.
            let search_terms = match (&self.vault, after.findable_by(&events)) {
                (Some(vault), Some(findable)) => vault.search_terms(stream_id, findable).await?,
                _ => None,
            };
            let mut new_key = None;
            if let Some(person) = after.data_subject() {
                // A person's own stream, opened now: her key is stored with these events.
                let opens_person = version == 0 && stream_id == person.stream_id();
                let sealed = match &self.vault {
                    Some(vault) => {
                        vault
                            .seal_events(
                                person,
                                stream_id,
                                meta.command_id,
                                &mut new_events,
                                opens_person,
                            )
                            .await?
                    }
                    None => crate::vault::refuse_unsealed(&new_events)?,
                };
                if sealed.any {
                    // The state, its cache and the read models hold the sealed text only.
                    after = sealed_state(state.as_deref(), &new_events)?;
                }
                new_key = sealed.new_key;
            }
            let append = Append {
                stream_id: stream_id.to_owned(),
                stream_type: A::STREAM_PREFIX,
                expected_version: if version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(version)
                },
                command_id: meta.command_id,
                metadata: Metadata {
                    actor: meta.actor,
                    correlation_id: meta.correlation_id,
                    partner_link: meta.partner_link,
                },
                occurred_at: ctx.now,
                events: new_events,
                projection: A::projection(state.as_deref(), &after),
                idempotency_key: meta.idempotency_key.clone(),
                new_person_key: new_key.as_ref().map(|(_, stored)| stored.clone()),
                search_terms,
            };
            match self.store.append(append).await {
                Ok(done) if done.duplicate => return self.first_result(&done).await,
                Ok(done) => {
                    if let (Some(vault), Some((key, stored))) = (&self.vault, new_key) {
                        vault.key_stored(key, stored.person);
                    }
                    let after = Arc::new(after);
                    self.cache.put(stream_id, done.last_version, after.clone());
                    return Ok(Handled {
                        state: after,
                        version: done.last_version,
                        first_version: done.first_version,
                        duplicate: false,
                    });
                }
                Err(StoreError::Conflict { .. })
                    if from_cache && meta.expected_version.is_none() =>
                {
                    tracing::debug!(
                        stream_id,
                        "cached state was behind; deciding again on fresh state"
                    );
                }
                Err(StoreError::Conflict { actual, .. }) => {
                    if let Some(expected) = meta.expected_version {
                        let conflict = CommandError::Conflict { expected, actual };
                        return self.earlier_result_or(&meta, conflict).await;
                    }
                    // Another replica wrote the stream meanwhile: decide again on fresh
                    // state after a pause that grows and is spread by jitter, until the
                    // deadline.
                    let pause = retry_pause(attempt, meta.command_id);
                    if Instant::now() + pause >= deadline {
                        tracing::warn!(stream_id, attempt, "conflicts until the deadline; busy");
                        let busy = CommandError::Busy {
                            retry_after: Duration::from_secs(1),
                        };
                        return self.earlier_result_or(&meta, busy).await;
                    }
                    tracing::debug!(
                        stream_id,
                        attempt,
                        "conflict; deciding again on fresh state"
                    );
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The first result of this command if it was appended before; otherwise `error`.
    /// Only asked on the unhappy path: the happy path learns of duplicates from the append.
    async fn earlier_result_or<A: Aggregate>(
        &self,
        meta: &CommandMeta,
        error: CommandError<A::Error>,
    ) -> Result<Handled<A>, CommandError<A::Error>> {
        match self.store.command_result(meta.command_id).await? {
            Some(done) => self.first_result(&done).await,
            None => Err(error),
        }
    }

    /// The state right after the first run of a repeated command.
    async fn first_result<A: Aggregate>(
        &self,
        done: &Appended,
    ) -> Result<Handled<A>, CommandError<A::Error>> {
        let loaded = self
            .load::<A>(&done.stream_id, ReadUntil::Version(done.last_version))
            .await?;
        let state = loaded
            .state
            .ok_or_else(|| StoreError::Unexpected(format!("stream {} vanished", done.stream_id)))?;
        Ok(Handled {
            state,
            version: done.last_version,
            first_version: done.first_version,
            duplicate: true,
        })
    }
}

/// The state after `events` as stored (sealed).
fn sealed_state<A: Aggregate>(state: Option<&A>, events: &[NewEvent]) -> Result<A, StoreError> {
    let mut folded = state.cloned();
    for e in events {
        let event: A::Event =
            homeward_workflows::upcast::decode(&e.event_type, e.schema_version, e.payload.clone())
                .map_err(|e| {
                    StoreError::Unexpected(format!("a sealed event does not decode: {e}"))
                })?;
        folded = A::apply(folded, &event);
    }
    folded.ok_or_else(|| StoreError::Unexpected("events did not open the stream".into()))
}

/// The pause before the `attempt`th retry after a conflict: from 2 ms, doubling up to 256 ms,
/// plus up to as much again of jitter derived from the command (replicas retrying the same
/// stream spread out without a random source).
fn retry_pause(attempt: u32, command_id: Uuid) -> Duration {
    let base = 2_u64 << attempt.min(7);
    let jitter =
        (command_id.as_u128() as u64 ^ u64::from(attempt).wrapping_mul(0x9e37_79b9)) % (base + 1);
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::retry_pause;
    use std::time::Duration;
    use uuid::Uuid;

    #[test]
    fn retry_pauses_grow_to_a_cap_with_jitter() {
        let id = Uuid::from_u128(0xdead_beef);
        assert!(retry_pause(0, id) <= Duration::from_millis(4));
        assert!(retry_pause(0, id) >= Duration::from_millis(2));
        let late = retry_pause(30, id);
        assert!(late >= Duration::from_millis(256) && late <= Duration::from_millis(512));
        let spread: std::collections::HashSet<_> = (0..50_u128)
            .map(|i| retry_pause(3, Uuid::from_u128(i * 7919)))
            .collect();
        assert!(spread.len() > 5, "jitter spreads commands: {spread:?}");
    }
}
