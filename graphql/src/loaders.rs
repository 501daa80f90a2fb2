//! Batch loaders, one set per request: every party, plan or person a response needs is loaded
//! in one round trip per kind, whatever the page size (no N+1).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use homeward_store::person_keys::PersonKey;
use homeward_store::projection::{OrganisationRow, PartyRow};
use homeward_workflows::person::Person;
use homeward_workflows::plan::Plan;
use uuid::Uuid;

use crate::{ApiError, Services};

/// A plan to load, at least at this version (`u64::MAX`: the latest, whatever the cache holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlanAt {
    pub id: Uuid,
    pub at_least: u64,
}

impl PlanAt {
    pub fn latest(id: Uuid) -> Self {
        Self {
            id,
            at_least: u64::MAX,
        }
    }
}

#[derive(Debug)]
pub struct PartyLoader(Services);
#[derive(Debug)]
pub struct PlanLoader(Services);
#[derive(Debug)]
pub struct PersonLoader(Services);
#[derive(Debug)]
pub struct OrganisationLoader(Services);

impl Loader<Uuid> for OrganisationLoader {
    type Value = Arc<OrganisationRow>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = self.0.reads.organisations_by_id(keys).await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.organisation_id, Arc::new(r)))
            .collect())
    }
}

impl Loader<Uuid> for PartyLoader {
    type Value = Arc<PartyRow>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = self.0.reads.parties_by_id(keys).await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.party_id, Arc::new(r)))
            .collect())
    }
}

impl Loader<PlanAt> for PlanLoader {
    type Value = Arc<Plan>;
    type Error = ApiError;

    async fn load(&self, keys: &[PlanAt]) -> Result<HashMap<PlanAt, Self::Value>, Self::Error> {
        let wanted: Vec<(String, u64)> = keys
            .iter()
            .map(|k| (format!("plan-{}", k.id), k.at_least))
            .collect();
        let loaded = self.0.handler.load_many::<Plan>(&wanted).await?;
        let by_stream: HashMap<String, Arc<Plan>> = loaded
            .into_iter()
            .filter_map(|(stream, l)| l.state.map(|s| (stream, s)))
            .collect();
        Ok(keys
            .iter()
            .filter_map(|k| {
                by_stream
                    .get(&format!("plan-{}", k.id))
                    .map(|p| (*k, p.clone()))
            })
            .collect())
    }
}

impl Loader<Uuid> for PersonLoader {
    type Value = Arc<Person>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let wanted: Vec<(String, u64)> = keys
            .iter()
            .map(|k| (format!("person-{k}"), u64::MAX))
            .collect();
        let loaded = self.0.handler.load_many::<Person>(&wanted).await?;
        Ok(loaded
            .into_iter()
            .filter_map(|(_, l)| l.state.map(|p| (p.id.0, p)))
            .collect())
    }
}

#[derive(Debug)]
pub struct PersonKeyLoader(Services);

impl Loader<Uuid> for PersonKeyLoader {
    type Value = PersonKey;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(self.0.vault.kept(keys).await?.into_iter().collect())
    }
}

/// The loaders of one request.
pub struct Loaders {
    /// Parties are cached for the request (or WebSocket connection): a page primes them all at
    /// once, and a party's name changing during one request does not matter.
    pub parties: DataLoader<PartyLoader, HashMapCache>,
    pub plans: DataLoader<PlanLoader>,
    pub persons: DataLoader<PersonLoader>,
    /// Not cached beyond a batch: a partnership ended is seen by the next operation of a
    /// long-lived socket.
    pub organisations: DataLoader<OrganisationLoader>,
    /// Never cached: whether a person is erased is asked afresh by every operation, so that an
    /// erasure through another replica shows at the next read.
    pub person_keys: DataLoader<PersonKeyLoader>,
    /// What this request (or socket) has shown of whom, for the access audit.
    pub access: Arc<homeward_engine::audit::AccessRecorder>,
}

impl std::fmt::Debug for Loaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaders").finish_non_exhaustive()
    }
}

impl Loaders {
    pub fn new(services: &Services) -> Self {
        Self {
            parties: DataLoader::with_cache(
                PartyLoader(services.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            plans: DataLoader::new(PlanLoader(services.clone()), tokio::spawn),
            persons: DataLoader::new(PersonLoader(services.clone()), tokio::spawn),
            organisations: DataLoader::new(OrganisationLoader(services.clone()), tokio::spawn),
            person_keys: DataLoader::new(PersonKeyLoader(services.clone()), tokio::spawn),
            access: Arc::default(),
        }
    }

    pub async fn party(&self, id: Uuid) -> Result<Option<Arc<PartyRow>>, ApiError> {
        self.parties.load_one(id).await
    }

    /// Loads every party the plans refer to (case workers, assignees) in one batch, so that the
    /// nested fields of a page find them without another round trip.
    pub async fn prime_parties<'a>(
        &self,
        plans: impl IntoIterator<Item = &'a Plan>,
    ) -> Result<(), ApiError> {
        let mut ids: Vec<Uuid> = Vec::new();
        for plan in plans {
            ids.push(plan.case_worker.0);
            ids.extend(plan.steps.iter().filter_map(|s| s.assignee.map(|a| a.0)));
        }
        ids.sort_unstable();
        ids.dedup();
        self.parties.load_many(ids).await?;
        Ok(())
    }

    pub async fn plan(&self, at: PlanAt) -> Result<Option<Arc<Plan>>, ApiError> {
        self.plans.load_one(at).await
    }

    pub async fn organisation(&self, id: Uuid) -> Result<Option<Arc<OrganisationRow>>, ApiError> {
        self.organisations.load_one(id).await
    }

    pub async fn person_key(&self, person: Uuid) -> Result<Option<PersonKey>, ApiError> {
        self.person_keys.load_one(person).await
    }

    pub async fn person(&self, id: Uuid) -> Result<Option<Arc<Person>>, ApiError> {
        self.persons.load_one(id).await
    }

    /// Several persons at once, by id (those that exist).
    pub async fn persons(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, Arc<Person>>, ApiError> {
        self.persons.load_many(ids.iter().copied()).await
    }
}
