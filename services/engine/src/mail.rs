//! Sending mail: the [`Mailer`] port and its two adapters, pooled SMTP ([`SmtpMailer`], from
//! `SMTP_URL`) and a file outbox ([`FileOutbox`], `.eml` files) for when no SMTP is configured.
//!
//! A message is multipart text + HTML, with an optional iCalendar invitation. Its Message-ID is
//! chosen by the caller (derived from the timer), so that a message sent again after a failure
//! is recognisable as the same message.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use thiserror::Error;

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub to_name: String,
    pub to_address: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Without angle brackets, e.g. `3f2c...@homeward`.
    pub message_id: String,
    /// An iCalendar (`.ics`) invitation to attach, as `text/calendar; method=REQUEST`.
    pub calendar: Option<String>,
}

#[derive(Debug, Error)]
pub enum MailError {
    /// Worth trying again later: the server is unreachable, busy or said "try later".
    #[error("sending failed for now: {0}")]
    Transient(String),
    /// Trying again will not help: the address or the message was refused.
    #[error("sending was refused: {0}")]
    Permanent(String),
    #[error("the mail settings are invalid: {0}")]
    Config(String),
}

#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug + 'static {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}

/// Builds the MIME message: text and HTML alternatives, plus the invitation when there is one.
pub fn build_message(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    let to: Mailbox = format!(
        "{} <{}>",
        mail.to_name.replace(['<', '>', '"'], ""),
        mail.to_address
    )
    .parse()
    .or_else(|_| mail.to_address.parse())
    .map_err(|e| MailError::Permanent(format!("recipient address: {e}")))?;
    let alternatives = MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone());
    let body = match &mail.calendar {
        None => alternatives,
        Some(ics) => {
            let calendar = ContentType::parse("text/calendar; charset=utf-8; method=REQUEST")
                .map_err(|e| MailError::Config(e.to_string()))?;
            MultiPart::mixed()
                .multipart(alternatives)
                .singlepart(Attachment::new("invite.ics".to_owned()).body(ics.clone(), calendar))
        }
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{}>", mail.message_id)))
        .multipart(body)
        .map_err(|e| MailError::Permanent(format!("message: {e}")))
}

/// How long one message may take by default, connection and greeting included: a server that
/// accepts and never answers holds a connection (and the reminder's claim) no longer than this.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Pooled asynchronous SMTP. `SMTP_URL` forms (lettre's): `smtp://host:port` (plain),
/// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465` (TLS).
///
/// Every send is bounded by a timeout (lettre bounds only the TCP connect). A send cut off by it
/// may leave its pooled connection in the middle of a command, so after a timeout the pool is
/// replaced by a fresh one rather than reused.
#[derive(Clone)]
pub struct SmtpMailer {
    url: Arc<str>,
    pool_size: u32,
    timeout: Duration,
    /// The pool in use and its generation.
    transport: Arc<RwLock<(u64, AsyncSmtpTransport<Tokio1Executor>)>>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.email.to_string())
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer with up to `pool_size` connections, each send bounded by
    /// [`DEFAULT_SMTP_TIMEOUT`].
    pub fn from_url(url: &str, from: &str, pool_size: u32) -> Result<Self, MailError> {
        let pool_size = pool_size.max(1);
        let transport = Self::transport(url, pool_size)?;
        let from = from
            .parse()
            .map_err(|e| MailError::Config(format!("sender address {from:?}: {e}")))?;
        Ok(Self {
            url: url.into(),
            pool_size,
            timeout: DEFAULT_SMTP_TIMEOUT,
            transport: Arc::new(RwLock::new((0, transport))),
            from,
        })
    }

    /// Bounds each send (connect, greeting, every command) by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connections in the pool: how many messages can be sent at once.
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    fn transport(
        url: &str,
        pool_size: u32,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(format!("SMTP_URL: {e}")))?
            .pool_config(PoolConfig::new().max_size(pool_size))
            // lettre applies this to the TCP connect only; `send` bounds the whole exchange.
            .timeout(Some(Duration::from_secs(10)))
            .build())
    }

    /// The transport in use, with its generation (bumped each time it is replaced).
    fn current(&self) -> (u64, AsyncSmtpTransport<Tokio1Executor>) {
        self.transport
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the pool after a timeout; `generation` is that of the transport that timed out,
    /// so that several sends timing out together replace it once.
    fn replace(&self, generation: u64) {
        let Ok(fresh) = Self::transport(&self.url, self.pool_size) else {
            return;
        };
        let mut current = self
            .transport
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.0 == generation {
            *current = (generation + 1, fresh);
        }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build_message(&self.from, mail)?;
        let (generation, transport) = self.current();
        match tokio::time::timeout(self.timeout, transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
            Ok(Err(e)) => Err(MailError::Transient(e.to_string())),
            Err(_) => {
                self.replace(generation);
                Err(MailError::Transient(format!(
                    "the mail server did not answer within {} s",
                    self.timeout.as_secs_f64()
                )))
            }
        }
    }
}

/// Writes each message as `<Message-ID>.eml` in a folder: a message sent again replaces its own
/// file, so the outbox holds each message once. The folder is readable by its owner only (0700)
/// and so is each message (0600): they name parties and carry partner links.
#[derive(Debug, Clone)]
pub struct FileOutbox {
    dir: PathBuf,
    from: Mailbox,
}

impl FileOutbox {
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> Result<Self, MailError> {
        let dir = dir.into();
        let config =
            |e: std::io::Error| MailError::Config(format!("outbox {}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(config)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(config)?;
        }
        let from = from
            .parse()
            .map_err(|e| MailError::Config(format!("sender address {from:?}: {e}")))?;
        Ok(Self { dir, from })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Deletes the messages written more than `age` ago; how many. Whoever reads the outbox has
    /// had them long enough.
    pub async fn forget_older_than(&self, age: std::time::Duration) -> std::io::Result<usize> {
        let mut forgotten = 0;
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let old = entry
                .metadata()
                .await?
                .modified()?
                .elapsed()
                .is_ok_and(|elapsed| elapsed > age);
            if old {
                tokio::fs::remove_file(&path).await?;
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }

    fn file_name(message_id: &str) -> String {
        let safe: String = message_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}.eml")
    }
}

#[async_trait]
impl Mailer for FileOutbox {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let bytes = build_message(&self.from, mail)?.formatted();
        let path = self.dir.join(Self::file_name(&mail.message_id));
        // Written beside, then renamed: a reader never sees half a message.
        let partial = path.with_extension("eml.partial");
        let io =
            |e: std::io::Error| MailError::Transient(format!("outbox {}: {e}", path.display()));
        let mut file = tokio::fs::OpenOptions::new();
        file.write(true).create(true).truncate(true);
        #[cfg(unix)]
        file.mode(0o600);
        let mut file = file.open(&partial).await.map_err(io)?;
        tokio::io::AsyncWriteExt::write_all(&mut file, &bytes)
            .await
            .map_err(io)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&partial, &path).await.map_err(io)?;
        Ok(())
    }
}
