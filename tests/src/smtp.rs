//! A real SMTP server for tests, on a random port: it speaks enough SMTP (EHLO, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT) for any client, keeps every message it accepted, and can be switched "down"
//! (it then answers 421 and hangs up) to test retries, made slow (each message answered only
//! after a delay), or made silent (it accepts connections and never greets). For benchmarks it
//! can count instead of keeping: then it only notes when each message (by Message-ID) arrived.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A message as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caught {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-stuffing undone.
    pub data: String,
    /// When the server took it (before it answered, however slowly).
    pub received_at: SystemTime,
}

impl Caught {
    /// The value of a header (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let mut lines = self.data.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if line.is_empty() {
                return None;
            }
            if let Some((key, value)) = line.split_once(':') {
                if key.eq_ignore_ascii_case(name) {
                    let mut value = value.trim().to_owned();
                    while let Some(next) = lines.peek() {
                        if next.starts_with(' ') || next.starts_with('\t') {
                            value.push(' ');
                            value.push_str(next.trim());
                            lines.next();
                        } else {
                            break;
                        }
                    }
                    return Some(decode_words(&value));
                }
            }
        }
        None
    }
}

impl Caught {
    /// The decoded body of the first MIME part of `content_type` (e.g. `text/plain`), as a
    /// mail client shows it: base64 and quoted-printable undone.
    pub fn part(&self, content_type: &str) -> Option<String> {
        use base64::Engine;
        let lower = self.data.to_ascii_lowercase();
        let at = lower.find(&format!("content-type: {content_type}"))?;
        let (headers, body) = self.data[at..].split_once("\r\n\r\n")?;
        let encoding = headers.split("\r\n").find_map(|line| {
            let line = line.to_ascii_lowercase();
            line.strip_prefix("content-transfer-encoding:")
                .map(|v| v.trim().to_owned())
        });
        let body = body.split("\r\n--").next()?;
        let bytes = match encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(body.split_whitespace().collect::<String>())
                .ok()?,
            Some("quoted-printable") => quoted_printable(body),
            _ => body.as_bytes().to_vec(),
        };
        Some(String::from_utf8_lossy(&bytes).replace("\r\n", "\n"))
    }
}

fn quoted_printable(body: &str) -> Vec<u8> {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`) in a header value, as
/// a mail client shows it; whitespace between two encoded words is dropped.
fn decode_words(value: &str) -> String {
    use base64::Engine;
    let decode = |word: &str| -> Option<String> {
        let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
        let mut parts = inner.splitn(3, '?');
        let _charset = parts.next()?;
        let encoding = parts.next()?.to_ascii_lowercase();
        let text = parts.next()?;
        let bytes = match encoding.as_str() {
            "b" => base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()?,
            "q" => {
                let mut out = Vec::new();
                let raw = text.as_bytes();
                let mut i = 0;
                while i < raw.len() {
                    match raw[i] {
                        b'_' => out.push(b' '),
                        b'=' if i + 2 < raw.len() => {
                            let hex = std::str::from_utf8(&raw[i + 1..i + 3]).ok()?;
                            out.push(u8::from_str_radix(hex, 16).ok()?);
                            i += 2;
                        }
                        b => out.push(b),
                    }
                    i += 1;
                }
                out
            }
            _ => return None,
        };
        String::from_utf8(bytes).ok()
    };
    let mut out = String::new();
    let mut previous_encoded = false;
    for token in value.split_whitespace() {
        match decode(token) {
            Some(text) => {
                if !previous_encoded && !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&text);
                previous_encoded = true;
            }
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(token);
                previous_encoded = false;
            }
        }
    }
    out
}

/// How the catcher behaves now, shared with its sessions.
#[derive(Debug, Default)]
struct Behaviour {
    down: AtomicBool,
    silent: AtomicBool,
    /// Milliseconds to wait before answering the end of each message.
    delay_ms: AtomicU64,
    refused: Mutex<Vec<String>>,
    /// Count and note arrival times only, keep no message.
    count_only: AtomicBool,
    /// Messages accepted, kept or not.
    received: AtomicU64,
    /// When each counted message arrived, by Message-ID.
    arrivals: Mutex<HashMap<String, SystemTime>>,
}

#[derive(Debug)]
pub struct SmtpCatcher {
    pub addr: SocketAddr,
    messages: Arc<Mutex<Vec<Caught>>>,
    behaviour: Arc<Behaviour>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpCatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpCatcher {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let addr = listener.local_addr().expect("an address");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Behaviour::default());
        let task = {
            let messages = messages.clone();
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    // Small replies at once, as a mail server does (no Nagle delay).
                    let _ = socket.set_nodelay(true);
                    let messages = messages.clone();
                    let behaviour = behaviour.clone();
                    tokio::spawn(async move {
                        let _ = session(socket, messages, behaviour).await;
                    });
                }
            })
        };
        Self {
            addr,
            messages,
            behaviour,
            task,
        }
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, no credentials.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// While down, new connections and open ones (at their next command) get `421` and are
    /// closed, as when a real server goes away.
    pub fn set_down(&self, down: bool) {
        self.behaviour.down.store(down, Ordering::SeqCst);
    }

    /// While silent, new connections are accepted and never greeted (a server that hangs);
    /// they stay open until the client gives up.
    pub fn set_silent(&self, silent: bool) {
        self.behaviour.silent.store(silent, Ordering::SeqCst);
    }

    /// Answers the end of each message only after `delay` (a slow server); the message counts
    /// as caught when its data has arrived, before the answer.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.behaviour.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Answers `550` (mailbox unavailable) to `RCPT TO` for this address from now on.
    pub fn refuse(&self, address: &str) {
        self.behaviour
            .refused
            .lock()
            .expect("catcher lock")
            .push(address.to_ascii_lowercase());
    }

    /// From now on, count messages and note when each arrived (by Message-ID) instead of
    /// keeping them: a benchmark's sink, whose memory and time stay small per message.
    pub fn set_count_only(&self, count_only: bool) {
        self.behaviour
            .count_only
            .store(count_only, Ordering::SeqCst);
    }

    /// Messages accepted since the start, kept or only counted.
    pub fn received(&self) -> u64 {
        self.behaviour.received.load(Ordering::SeqCst)
    }

    /// When each counted message arrived, by Message-ID (without its angle brackets).
    pub fn arrivals(&self) -> HashMap<String, SystemTime> {
        self.behaviour
            .arrivals
            .lock()
            .expect("catcher lock")
            .clone()
    }

    pub fn messages(&self) -> Vec<Caught> {
        self.messages.lock().expect("catcher lock").clone()
    }

    /// The messages caught so far, which the catcher then forgets.
    pub fn take(&self) -> Vec<Caught> {
        std::mem::take(&mut *self.messages.lock().expect("catcher lock"))
    }

    /// Takes the invitations sent to parties as they were registered, and checks that they are
    /// all there was: what a test of reminders starts from.
    pub fn take_invitations(&self, parties: usize) {
        let caught = self.take();
        assert_eq!(
            caught.len(),
            parties,
            "one invitation per party: {caught:#?}"
        );
        for message in &caught {
            let id = message.header("Message-ID").unwrap_or_default();
            assert!(id.starts_with("<invitation-"), "not an invitation: {id}");
        }
    }

    /// Waits until at least `n` messages arrived (at most `timeout`), and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Caught> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The Message-ID header's value without its angle brackets.
fn message_id(data: &str) -> Option<String> {
    data.split("\r\n")
        .take_while(|line| !line.is_empty())
        .find(|line| line.to_ascii_lowercase().starts_with("message-id:"))
        .map(|line| line[11..].trim().trim_matches(['<', '>']).to_owned())
}

async fn session(
    socket: TcpStream,
    messages: Arc<Mutex<Vec<Caught>>>,
    behaviour: Arc<Behaviour>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    if behaviour.silent.load(Ordering::SeqCst) {
        // Never greet; wait for the client to hang up.
        let mut ignored = String::new();
        while lines.read_line(&mut ignored).await? > 0 {
            ignored.clear();
        }
        return Ok(());
    }
    let down = &behaviour.down;
    if down.load(Ordering::SeqCst) {
        write
            .write_all(b"421 4.3.0 catcher is down, try later\r\n")
            .await?;
        return Ok(());
    }
    write.write_all(b"220 catcher ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        if down.load(Ordering::SeqCst) {
            write
                .write_all(b"421 4.3.0 catcher is down, try later\r\n")
                .await?;
            return Ok(());
        }
        if upper.starts_with("EHLO") {
            write
                .write_all(b"250-catcher\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                .await?;
        } else if upper.starts_with("HELO") || upper == "NOOP" {
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = command[10..].trim().to_owned();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let address = command[8..].trim().to_owned();
            let bare = address.trim_matches(['<', '>']).to_ascii_lowercase();
            if behaviour
                .refused
                .lock()
                .expect("catcher lock")
                .contains(&bare)
            {
                write
                    .write_all(b"550 5.1.1 mailbox unavailable\r\n")
                    .await?;
                continue;
            }
            to.push(address);
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            write.write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
            }
            let received_at = SystemTime::now();
            behaviour.received.fetch_add(1, Ordering::SeqCst);
            if behaviour.count_only.load(Ordering::SeqCst) {
                if let Some(id) = message_id(&data) {
                    behaviour
                        .arrivals
                        .lock()
                        .expect("catcher lock")
                        .insert(id, received_at);
                }
            } else {
                messages.lock().expect("catcher lock").push(Caught {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                    received_at,
                });
            }
            let delay = behaviour.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            write.write_all(b"250 OK queued\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 not implemented\r\n").await?;
        }
    }
}
