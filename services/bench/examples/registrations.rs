//! Registers persons one after another through the command handler, for counting what a
//! registration costs in instructions (`valgrind --tool=callgrind`), which the machine's noise
//! does not move as it moves the rates of `homeward-bench --phases personal`:
//!
//! ```text
//! registrations <sealed|unindexed|unsealed> <count>
//! ```
//!
//! `sealed` is the server's vault (her fields sealed, her name and date of birth indexed),
//! `unindexed` the same without the blind index, `unsealed` the baseline that stores the fields
//! as they come. Run it twice with two counts: the difference over the difference of counts is
//! the cost of one registration, without the start's. BENCHMARKS.md says how, for this process
//! and for PostgreSQL's.

use std::sync::Arc;

use anyhow::Context;
use homeward_engine::keys::MasterKey;
use homeward_engine::search::{BlindIndex, SearchKey};
use homeward_engine::vault::Vault;
use homeward_engine::{CommandHandler, CommandMeta, SystemClock};
use homeward_store_postgres::PgStore;
use homeward_workflows::person::{ContactDetails, Person, PersonCommand};
use homeward_workflows::{OrganisationId, PartyId, PersonId, Personal};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: registrations <sealed|unindexed|unsealed> <count>";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let vault_kind = args.next().context(USAGE)?;
    let count: u64 = args.next().context(USAGE)?.parse().context(USAGE)?;
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    let store = Arc::new(PgStore::connect(&url, 4).await?);
    store.migrate().await?;
    // The benchmark's keys, so that runs of this and of `homeward-bench` share a database.
    let master = MasterKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")?;
    let search = SearchKey::from_base64("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")?;
    let vault = match vault_kind.as_str() {
        "sealed" => Vault::new(master, store.clone()).with_search(BlindIndex::new(search)),
        "unindexed" => Vault::new(master, store.clone()),
        "unsealed" => Vault::unsealed_baseline(master, store.clone()),
        _ => anyhow::bail!(USAGE),
    };
    let handler =
        CommandHandler::new(store.clone(), Arc::new(SystemClock)).with_vault(Arc::new(vault));
    let party = PartyId::new();
    let organisation = OrganisationId(uuid::Uuid::from_u128(0xbe9c4));
    for n in 0..count {
        let person_id = PersonId::new();
        let command = PersonCommand::Register {
            person_id,
            organisation,
            full_name: format!("Person {n} Example"),
            date_of_birth: chrono::NaiveDate::from_ymd_opt(1998, 4, 2),
            preferred_language: Some("fr".into()),
            contact: ContactDetails {
                phone: Some(Personal::new("+234 800 000 0000".into())),
                email: None,
                address: Some(Personal::new("12 Example Street, Lagos".into())),
            },
        };
        handler
            .handle::<Person>(&person_id.stream_id(), &command, CommandMeta::new(party))
            .await?;
    }
    Ok(())
}
