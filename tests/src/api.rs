//! The real server on a random port over a fresh database, and a client that speaks GraphQL to
//! it over HTTP and WebSocket as the people who use Homeward would.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use homeward::app::{Application, Settings};
use homeward_engine::FixedClock;
use homeward_engine::{Clock, CommandMeta};
use homeward_workflows::organisation::{Organisation, OrganisationCommand, OrganisationKind};
use homeward_workflows::party::{PartyDetails, PartyRole};
use homeward_workflows::{OrganisationId, PartyId};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::{start_time, TestDb};

/// A running Homeward API.
#[derive(Debug)]
pub struct TestApi {
    pub db: TestDb,
    /// The store the server serves from (the database of `db` it runs on).
    pub backend: Arc<dyn homeward_store::Backend>,
    pub addr: SocketAddr,
    pub clock: Arc<FixedClock>,
    pub http: reqwest::Client,
    /// The bootstrap admin's token.
    pub admin: String,
    /// The master key the server was started with (base64), for its other replicas.
    pub master_key: String,
    /// Organisations registered so far, by name (see [`TestApi::organisation`]).
    organisations: tokio::sync::Mutex<std::collections::HashMap<String, String>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The government office and the partner in the country of origin that every programme the
/// tests register works with.
pub const WORKS_WITH: [&str; 2] = ["Prefecture", "Hope Lagos"];

/// Another replica of the server (see [`TestApi::second_replica`]).
#[derive(Debug)]
pub struct Replica {
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Replica {
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// Opens a WebSocket to this replica as `token` and starts one subscription.
    pub async fn subscribe(&self, token: &str, query: &str, variables: Value) -> Subscription {
        Subscription::open(self.addr, token, query, variables).await
    }

    /// The data of a query to this replica that must succeed.
    pub async fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        let (_, body) = post(
            &reqwest::Client::new(),
            &self.url(),
            Some(token),
            query,
            variables,
        )
        .await;
        data_of(body, query)
    }
}

/// A GraphQL request to `url`, as `token` if any: the status and the JSON body.
async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut request = http
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

/// The data of an answer that must hold no errors.
fn data_of(body: Value, query: &str) -> Value {
    assert!(
        body.get("errors").is_none(),
        "query failed: {query}\n{body:#}"
    );
    body["data"].clone()
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One party as the tests use it: its id and its token.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub token: String,
}

/// `settings` with rate limits no test meets unless it sets its own, and tokens that outlive
/// the journeys of a year and more that tests follow.
fn unlimited(settings: Settings) -> Settings {
    Settings {
        rate_limit: 100_000,
        rate_burst: 100_000,
        token_max_days: TOKEN_DAYS as u32,
        // The tests register their own admin.
        no_bootstrap: true,
        // Invitations and notices without SMTP: a folder of this test's own.
        outbox_dir: std::env::temp_dir()
            .join(format!("homeward-test-outbox-{}", uuid::Uuid::new_v4())),
        ..settings
    }
}

/// How long the tokens of [`TestApi::party`] live.
pub const TOKEN_DAYS: i64 = 3650;

impl TestApi {
    pub async fn start() -> Self {
        Self::start_with(|s| s).await
    }

    /// Starts the server with adjusted settings.
    pub async fn start_with(adjust: impl FnOnce(Settings) -> Settings) -> Self {
        Self::start_on(TestDb::for_server().await, adjust).await
    }

    /// Starts the server on a SQLite file of its own, whatever the tests run on.
    pub async fn start_on_sqlite() -> Self {
        let mut db = TestDb::new().await;
        db.sqlite = Some(crate::TestSqlite::new().await);
        Self::start_on(db, |s| s).await
    }

    async fn start_on(db: TestDb, adjust: impl FnOnce(Settings) -> Settings) -> Self {
        let clock = Arc::new(FixedClock::new(start_time()));
        // The reminder worker is off unless a test turns it on: it would record events of its
        // own while a test counts them. The rate limits are on, high enough that only the
        // tests of limits meet them.
        let settings = adjust(Settings {
            no_scheduler: true,
            master_key: Some(crate::TEST_MASTER_KEY.into()),
            search_key: Some(crate::TEST_SEARCH_KEY.into()),
            ..unlimited(Settings::new(
                db.server_url(),
                "127.0.0.1:0".parse().expect("an address"),
            ))
        });
        let master_key = settings
            .master_key
            .as_ref()
            .map(|k| secrecy::ExposeSecret::expose_secret(k).to_owned())
            .unwrap_or_else(|| crate::TEST_MASTER_KEY.to_owned());
        let app = Application::build_with_clock(settings, clock.clone())
            .await
            .expect("the application starts");
        let addr = app.local_addr();
        let app_backend = app.backend();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let admin_details = PartyDetails {
            display_name: "Ada Admin".into(),
            email: "admin@homeward.example".into(),
            role: PartyRole::Admin,
            organisation: homeward_workflows::OrganisationId::new(),
            country: "GB".into(),
            language: "en".into(),
            time_zone: "UTC".into(),
            supervisor: None,
        };
        let (_, token) = homeward::cli::bootstrap(app_backend.clone(), "Homeward", admin_details)
            .await
            .expect("bootstrap an admin");
        Self {
            db,
            backend: app_backend,
            addr,
            clock,
            http: reqwest::Client::new(),
            admin: token.secret,
            master_key,
            organisations: Default::default(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// Starts a server on another database (`url`), with this one's clock and master key; it
    /// stops when dropped.
    pub async fn server_on(&self, url: &str) -> Replica {
        let settings = Settings {
            no_scheduler: true,
            master_key: Some(self.master_key.clone().into()),
            search_key: Some(crate::TEST_SEARCH_KEY.into()),
            ..unlimited(Settings::new(
                url,
                "127.0.0.1:0".parse().expect("an address"),
            ))
        };
        let app = Application::build_with_clock(settings, self.clock.clone())
            .await
            .expect("the server starts");
        let addr = app.local_addr();
        let server = tokio::spawn(async move {
            let _ = app.run_until_stopped(std::future::pending()).await;
        });
        Replica { addr, server }
    }

    /// Starts a second replica of the server on the same database and clock, with the
    /// reminder worker off; it stops when dropped.
    pub async fn second_replica(&self) -> Replica {
        self.second_replica_with(|s| s).await
    }

    /// Starts a second replica with adjusted settings (the worker is off unless they turn it
    /// on); it stops when dropped.
    pub async fn second_replica_with(&self, adjust: impl FnOnce(Settings) -> Settings) -> Replica {
        let settings = adjust(Settings {
            no_scheduler: true,
            master_key: Some(self.master_key.clone().into()),
            search_key: Some(crate::TEST_SEARCH_KEY.into()),
            ..unlimited(Settings::new(
                self.db.url.clone(),
                "127.0.0.1:0".parse().expect("an address"),
            ))
        });
        let app = Application::build_with_clock(settings, self.clock.clone())
            .await
            .expect("the second replica starts");
        let addr = app.local_addr();
        let server = tokio::spawn(async move {
            let _ = app.run_until_stopped(std::future::pending()).await;
        });
        Replica { addr, server }
    }

    /// Sends a query; returns the HTTP status and the JSON body.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        post(&self.http, &self.url(), token, query, variables).await
    }

    /// The samples of a `/metrics` scrape, by name and labels as written (`name{a="b"}`).
    pub async fn metrics(&self) -> std::collections::HashMap<String, f64> {
        let text = self
            .http
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
            .expect("the server answers")
            .text()
            .await
            .expect("a text body");
        samples(&text)
    }

    /// The whole response of a query.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        self.post(Some(token), query, variables).await.1
    }

    /// The data of a query that must succeed.
    pub async fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        data_of(self.gql(token, query, variables).await, query)
    }

    /// Registers a survivor as the social worker whose token this is; returns her id.
    pub async fn register_person(&self, token: &str, full_name: &str) -> String {
        self.data(
            token,
            "mutation($name: String!) { registerPerson(input: { fullName: $name }) }",
            json!({ "name": full_name }),
        )
        .await["registerPerson"]
            .as_str()
            .expect("registerPerson answers her id")
            .to_owned()
    }

    /// Registers a survivor and opens a plan for them from the standard template, as the social
    /// worker whose token this is; returns the plan's id.
    pub async fn open_plan(&self, token: &str, full_name: &str) -> Value {
        let person = self.register_person(token, full_name).await;
        self.data(
            token,
            "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }",
            json!({ "p": person }),
        )
        .await["openPlan"]["plan"]["id"]
            .clone()
    }

    /// The id of the survivor whose plan this is, as the worker whose token this is reads it.
    pub async fn person_of_plan(&self, token: &str, plan: &str) -> String {
        self.data(
            token,
            "query($id: ID!) { plan(id: $id) { person { id } } }",
            json!({ "id": plan }),
        )
        .await["plan"]["person"]["id"]
            .as_str()
            .expect("a plan has a person")
            .to_owned()
    }

    /// The id of the organisation the tests call `name`, registered on first use (in the log,
    /// as the API would: requests here would count against the admin's rate): `Prefecture` is a
    /// government office, `Hope Lagos` a partner, any other name a programme that works with
    /// both of them.
    pub fn organisation<'a>(
        &'a self,
        name: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send + 'a>> {
        Box::pin(async move {
            if let Some(id) = self.organisations.lock().await.get(name) {
                return id.clone();
            }
            let kind = match name {
                "Prefecture" => OrganisationKind::Government,
                "Hope Lagos" => OrganisationKind::Partner,
                _ => OrganisationKind::Programme,
            };
            let mut commands = vec![];
            let id = OrganisationId::new();
            commands.push(OrganisationCommand::Register {
                organisation_id: id,
                name: name.to_owned(),
                kind,
                country: "FR".to_owned(),
            });
            if kind == OrganisationKind::Programme {
                for partner in WORKS_WITH {
                    let partner = self.organisation(partner).await;
                    commands.push(OrganisationCommand::StartWorkingWith {
                        partner: OrganisationId(partner.parse().expect("an id")),
                    });
                }
            }
            let handler = homeward_engine::CommandHandler::new(
                self.backend.clone() as Arc<dyn homeward_store::EventStore>,
                self.clock.clone(),
            );
            for command in commands {
                handler
                    .handle::<Organisation>(
                        &id.stream_id(),
                        &command,
                        CommandMeta::new(PartyId::new()),
                    )
                    .await
                    .expect("register a test organisation");
            }
            self.organisations
                .lock()
                .await
                .insert(name.to_owned(), id.to_string());
            id.to_string()
        })
    }

    /// Registers a party through the API and gives it a token.
    pub async fn party(&self, role: &str, name: &str, organisation: &str) -> Person {
        self.party_in(role, name, organisation, "FR", "fr", "Europe/Paris")
            .await
    }

    /// Registers a party through the API, without a token; its id.
    pub async fn register_party(&self, role: &str, name: &str, organisation: &str) -> String {
        self.register_party_in(role, name, organisation, "FR", "fr", "Europe/Paris")
            .await
    }

    pub async fn party_in(
        &self,
        role: &str,
        name: &str,
        organisation: &str,
        country: &str,
        language: &str,
        time_zone: &str,
    ) -> Person {
        let id = self
            .register_party_in(role, name, organisation, country, language, time_zone)
            .await;
        let token = self.token_for(&id).await;
        Person { id, token }
    }

    /// A token for a registered party, as `homeward token create` on the server makes one (an
    /// admin cannot create one for a case role through the API).
    pub async fn token_for(&self, party: &str) -> String {
        let party = PartyId(party.parse().expect("a party id"));
        let row = self
            .backend
            .parties_by_id(&[party.0])
            .await
            .expect("read the party")
            .pop()
            .expect("the party is registered");
        let request = homeward_engine::tokens::TokenRequest {
            party,
            role: PartyRole::parse(&row.role).expect("a role"),
            days: TOKEN_DAYS,
            max_days: TOKEN_DAYS,
            issued_by: None,
        };
        homeward_engine::tokens::issue(self.backend.as_ref(), request, self.clock.now())
            .await
            .expect("issue a token")
            .secret
    }

    async fn register_party_in(
        &self,
        role: &str,
        name: &str,
        organisation: &str,
        country: &str,
        language: &str,
        time_zone: &str,
    ) -> String {
        let email = format!(
            "{}@{}.example",
            name.to_lowercase().replace(' ', "."),
            organisation.to_lowercase().replace(' ', "-")
        );
        let organisation = self.organisation(organisation).await;
        let data = self
            .data(
                &self.admin,
                "mutation($input: PartyInput!) { registerParty(input: $input) { id } }",
                json!({ "input": {
                    "displayName": name, "email": email, "role": role,
                    "organisation": organisation, "country": country,
                    "language": language, "timeZone": time_zone,
                }}),
            )
            .await;
        data["registerParty"]["id"]
            .as_str()
            .expect("a party id")
            .to_owned()
    }

    /// Opens a WebSocket (`graphql-transport-ws`) as `token` and starts one subscription.
    pub async fn subscribe(&self, token: &str, query: &str, variables: Value) -> Subscription {
        Subscription::open(self.addr, token, query, variables).await
    }

    /// Stops the server (graceful shutdown) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task ends")
                .expect("the server stops cleanly");
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket stays open")
            .expect("a WebSocket message");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected WebSocket message {other:?}"),
        }
    }
}

/// A subscription on its own WebSocket.
#[derive(Debug)]
pub struct Subscription {
    socket: Socket,
}

impl Subscription {
    /// Opens a WebSocket (`graphql-transport-ws`) to the server at `addr` as `token`, and
    /// starts one subscription (id "1").
    pub async fn open(addr: SocketAddr, token: &str, query: &str, variables: Value) -> Self {
        let mut request = format!("ws://{}/graphql", addr)
            .into_client_request()
            .expect("a WebSocket request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("a header value"),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        let init = json!({ "type": "connection_init",
                           "payload": { "Authorization": format!("Bearer {token}") } });
        socket
            .send(Message::text(init.to_string()))
            .await
            .expect("send connection_init");
        let ack = next_json(&mut socket).await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        let subscribe = json!({ "id": "1", "type": "subscribe",
                                "payload": { "query": query, "variables": variables } });
        socket
            .send(Message::text(subscribe.to_string()))
            .await
            .expect("send subscribe");
        Self { socket }
    }

    /// Sends one more operation over the same socket, with this id.
    pub async fn send_operation(&mut self, id: &str, query: &str) {
        let subscribe = json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
        self.socket
            .send(Message::text(subscribe.to_string()))
            .await
            .expect("send subscribe");
    }

    /// Tells the server the client is done with an operation.
    pub async fn complete(&mut self, id: &str) {
        let complete = json!({ "id": id, "type": "complete" });
        self.socket
            .send(Message::text(complete.to_string()))
            .await
            .expect("send complete");
    }

    /// Reads until the server closes the socket (within `within`): the close code and reason,
    /// and the protocol messages that came before it.
    pub async fn closed(&mut self, within: std::time::Duration) -> (u16, String, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let message = tokio::time::timeout(within, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("not closed within {within:?}; before: {before:?}"));
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string(), before)
                }
                Some(Ok(Message::Text(text))) => {
                    before.push(serde_json::from_str(&text).expect("JSON"))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a close frame, got {other:?} after {before:?}"),
            }
        }
    }

    /// Whether the socket stays open, saying nothing, for `quiet`.
    pub async fn stays_quiet(&mut self, quiet: std::time::Duration) -> bool {
        tokio::time::timeout(quiet, self.socket.next())
            .await
            .is_err()
    }
    /// The next `next` payload's data (panics on errors or after 10 s).
    pub async fn next(&mut self) -> Value {
        let message = next_json(&mut self.socket).await;
        assert_eq!(message["type"], "next", "{message}");
        assert!(
            message["payload"].get("errors").is_none(),
            "subscription error: {message}"
        );
        message["payload"]["data"].clone()
    }

    /// The next raw protocol message.
    pub async fn next_message(&mut self) -> Value {
        next_json(&mut self.socket).await
    }
}

/// The `extensions.code` of the first error of a response.
/// The samples of a `/metrics` text, by name and labels as written (`name{a="b"}`).
pub fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}
