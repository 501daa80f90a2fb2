//! `homeward export FILE` and `homeward import FILE`: a whole database in one file, to move an
//! office from SQLite to PostgreSQL (or back) without losing a thing.
//!
//! The file is JSON lines: a header, every event as stored and in commit order (personal fields
//! stay sealed), then what a rebuild cannot recompute (see `homeward_store::archive`), then an
//! end line with the counts, so that a file cut short is refused before anything is imported.
//! Bytes are base64. The master key is not in the file: the database it is imported into is
//! opened with the same key, or the import is refused. The server's own secrets are (the key
//! that signs partner links): the file is to be kept as safe as the database.

use std::collections::HashSet;
use std::io::{BufRead as _, BufWriter, Write as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use homeward_store::access_log::AccessEntry;
use homeward_store::archive::{Kept, KeptPersonKey};
use homeward_store::idempotency::KeyRecord;
use homeward_store::{Backend, Cursor, Metadata, RecordedEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const FORMAT: &str = "homeward-export";
const VERSION: u32 = 1;
/// Events read, or written, at a time.
const PAGE: i64 = 2_000;

/// What the access audit names as the reader of an export: the operator at the command line,
/// who is no party.
pub const OPERATOR: Uuid = Uuid::nil();

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    Header {
        format: String,
        version: u32,
        exported_at: DateTime<Utc>,
    },
    Event {
        tx: u64,
        stream_id: String,
        stream_version: u64,
        event_id: Uuid,
        command_id: Uuid,
        event_type: String,
        schema_version: i16,
        /// The payload's JSON text, as stored.
        payload: String,
        metadata: Metadata,
        occurred_at: DateTime<Utc>,
        recorded_at: DateTime<Utc>,
    },
    Stream {
        stream_id: String,
        stream_type: String,
    },
    PersonKey {
        person: Uuid,
        wrapped: Option<String>,
        created_at: DateTime<Utc>,
        erased_at: Option<DateTime<Utc>>,
        organisation: Option<Uuid>,
        terms: Vec<String>,
    },
    Access {
        at: DateTime<Utc>,
        party: Uuid,
        person: Uuid,
        fields: Vec<String>,
        operation: String,
    },
    IdempotencyKey {
        party: Uuid,
        key_hash: String,
        operation: String,
        target: Option<String>,
        fingerprint: String,
        command_id: Uuid,
        created_at: DateTime<Utc>,
    },
    Secret {
        name: String,
        secret: String,
    },
    End {
        events: u64,
        lines: u64,
    },
}

/// What an export or an import moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub events: u64,
    pub persons: u64,
    pub access_entries: u64,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> anyhow::Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .context("a value that is not base64")
}

/// Writes the whole database to `target` (a new file), and records in the access audit that
/// every survivor's data was exported (before the file is written).
pub async fn export(store: Arc<dyn Backend>, target: &Path) -> anyhow::Result<Moved> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
        .with_context(|| format!("cannot create {} (it must not exist)", target.display()))?;
    // Survivors' data, even sealed, is leaving: readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o600))?;
    }
    let mut out = BufWriter::new(file);
    let now = Utc::now();
    let audited: Vec<AccessEntry> = store
        .export_kept()
        .await?
        .person_keys
        .iter()
        .filter(|k| k.wrapped.is_some())
        .map(|k| AccessEntry {
            at: now,
            party: OPERATOR,
            person: k.person,
            fields: vec!["everything (sealed)".to_owned()],
            operation: format!("homeward export to {}", target.display()),
        })
        .collect();
    store.record_access(&audited).await?;

    let lines = std::cell::Cell::new(0u64);
    let mut write = |line: &Line| -> anyhow::Result<()> {
        serde_json::to_writer(&mut out, line)?;
        out.write_all(b"\n")?;
        lines.set(lines.get() + 1);
        Ok(())
    };
    write(&Line::Header {
        format: FORMAT.to_owned(),
        version: VERSION,
        exported_at: now,
    })?;
    let mut events = 0u64;
    let mut cursor = Cursor::START;
    let (mut streams, mut commands) = (HashSet::new(), HashSet::new());
    loop {
        let page = store.export_events(cursor, PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = last.cursor();
        for e in page {
            events += 1;
            streams.insert(e.stream_id.clone());
            commands.insert(e.command_id);
            write(&Line::Event {
                tx: e.tx_id,
                stream_id: e.stream_id,
                stream_version: e.stream_version,
                event_id: e.event_id,
                command_id: e.command_id,
                event_type: e.event_type,
                schema_version: e.schema_version,
                payload: e.payload,
                metadata: e.metadata,
                occurred_at: e.occurred_at,
                recorded_at: e.recorded_at,
            })?;
        }
    }
    // Read after the events: every key an exported event is sealed under is stored before
    // it, so it is here (with the audit entries just recorded). What a running server wrote
    // after the last page is left out whole: a stream, or a request's key, without its events
    // would stop the same request on the new database.
    let mut kept = store.export_kept().await?;
    kept.streams.retain(|(stream, _)| streams.contains(stream));
    kept.idempotency_keys
        .retain(|key| commands.contains(&key.command_id));
    for (stream_id, stream_type) in &kept.streams {
        write(&Line::Stream {
            stream_id: stream_id.clone(),
            stream_type: stream_type.clone(),
        })?;
    }
    for key in &kept.person_keys {
        write(&Line::PersonKey {
            person: key.person,
            wrapped: key.wrapped.as_deref().map(b64),
            created_at: key.created_at,
            erased_at: key.erased_at,
            organisation: key.organisation,
            terms: key.terms.iter().map(|t| b64(t)).collect(),
        })?;
    }
    for entry in &kept.access_log {
        write(&Line::Access {
            at: entry.at,
            party: entry.party,
            person: entry.person,
            fields: entry.fields.clone(),
            operation: entry.operation.clone(),
        })?;
    }
    for key in &kept.idempotency_keys {
        write(&Line::IdempotencyKey {
            party: key.party,
            key_hash: b64(&key.key_hash),
            operation: key.operation.clone(),
            target: key.target.clone(),
            fingerprint: b64(&key.fingerprint),
            command_id: key.command_id,
            created_at: key.created_at,
        })?;
    }
    for (name, secret) in &kept.secrets {
        write(&Line::Secret {
            name: name.clone(),
            secret: b64(secret),
        })?;
    }
    let total = lines.get() + 1;
    write(&Line::End {
        events,
        lines: total,
    })?;
    out.flush()?;
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", target.display()))?
        .sync_all()?;
    Ok(Moved {
        events,
        persons: kept.person_keys.len() as u64,
        access_entries: kept.access_log.len() as u64,
    })
}

/// Reads the file once to check it whole (a header, an end line with the right counts) before
/// anything is written.
fn check(source: &Path) -> anyhow::Result<Vec<u8>> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(source).with_context(|| format!("cannot open {}", source.display()))?,
    );
    let (mut lines, mut events, mut end, mut master_check) = (0u64, 0u64, None, None);
    for (n, text) in reader.lines().enumerate() {
        let text = text?;
        let line: Line = serde_json::from_str(&text).with_context(|| {
            format!(
                "line {} of {} is not an export line",
                n + 1,
                source.display()
            )
        })?;
        lines += 1;
        match line {
            Line::Header {
                format, version, ..
            } if n == 0 && (format != FORMAT || version != VERSION) => {
                bail!(
                    "{} is a {format} file of version {version}, not a {FORMAT} of version \
                     {VERSION}",
                    source.display()
                );
            }
            Line::Header { .. } if n == 0 => {}
            _ if n == 0 => bail!(
                "{} does not start with a homeward export header",
                source.display()
            ),
            Line::Event { .. } => events += 1,
            Line::Secret { name, secret } if name == "master_key_check" => {
                master_check = Some(unb64(&secret)?);
            }
            Line::End {
                events: e,
                lines: l,
            } => end = Some((e, l)),
            _ => {}
        }
    }
    match end {
        Some((e, l)) if e == events && l == lines => {}
        Some(_) => bail!(
            "{} does not hold what its end line says: it was changed",
            source.display()
        ),
        None => bail!(
            "{} is cut short (no end line): export again",
            source.display()
        ),
    }
    Ok(master_check.unwrap_or_default())
}

/// Loads `source` into `store`, which must be empty, then rebuilds the read models. `master_check`
/// is the check value of the master key the importing server holds: it must be the one the
/// export's data was sealed under.
pub async fn import(
    store: Arc<dyn Backend>,
    source: &Path,
    master_check: &[u8],
) -> anyhow::Result<Moved> {
    let sealed_under = check(source)?;
    if !sealed_under.is_empty() && sealed_under != master_check {
        bail!(
            "{} was exported from a database sealed under another master key: import it with \
             that key (HOMEWARD_MASTER_KEY or HOMEWARD_MASTER_KEY_FILE)",
            source.display()
        );
    }
    if !store.is_empty().await? {
        bail!("the database to import into is not empty: import into a new one");
    }
    let reader = std::io::BufReader::new(std::fs::File::open(source)?);
    let mut kept = Kept::default();
    let mut batch: Vec<RecordedEvent> = Vec::new();
    let mut events = 0u64;
    for text in reader.lines() {
        match serde_json::from_str::<Line>(&text?)? {
            Line::Header { .. } | Line::End { .. } => {}
            Line::Event {
                tx,
                stream_id,
                stream_version,
                event_id,
                command_id,
                event_type,
                schema_version,
                payload,
                metadata,
                occurred_at,
                recorded_at,
            } => {
                events += 1;
                batch.push(RecordedEvent {
                    global_position: events as i64,
                    tx_id: tx,
                    stream_id,
                    stream_version,
                    event_id,
                    command_id,
                    event_type,
                    schema_version,
                    payload,
                    metadata,
                    occurred_at,
                    recorded_at,
                });
                if batch.len() as i64 >= PAGE {
                    store.import_events(&batch).await?;
                    batch.clear();
                }
            }
            Line::Stream {
                stream_id,
                stream_type,
            } => kept.streams.push((stream_id, stream_type)),
            Line::PersonKey {
                person,
                wrapped,
                created_at,
                erased_at,
                organisation,
                terms,
            } => kept.person_keys.push(KeptPersonKey {
                person,
                wrapped: wrapped.as_deref().map(unb64).transpose()?,
                created_at,
                erased_at,
                organisation,
                terms: terms.iter().map(|t| unb64(t)).collect::<Result<_, _>>()?,
            }),
            Line::Access {
                at,
                party,
                person,
                fields,
                operation,
            } => kept.access_log.push(AccessEntry {
                at,
                party,
                person,
                fields,
                operation,
            }),
            Line::IdempotencyKey {
                party,
                key_hash,
                operation,
                target,
                fingerprint,
                command_id,
                created_at,
            } => kept.idempotency_keys.push(KeyRecord {
                party,
                key_hash: unb64(&key_hash)?,
                operation,
                target,
                fingerprint: unb64(&fingerprint)?,
                command_id,
                created_at,
            }),
            Line::Secret { name, secret } => kept.secrets.push((name, unb64(&secret)?)),
        }
    }
    store.import_events(&batch).await?;
    store.import_kept(&kept).await?;
    store
        .rebuild_projections()
        .await
        .context("rebuilding the read models from the imported log")?;
    Ok(Moved {
        events,
        persons: kept.person_keys.len() as u64,
        access_entries: kept.access_log.len() as u64,
    })
}
