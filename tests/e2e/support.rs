//! The test harness: a fresh database per test (SQLite in a temporary directory, or a new
//! PostgreSQL database), the real `agentsecrets-connect` binary started on port 0, and helpers to
//! read what it wrote (logs, database files).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use connect_broker::keys::{KeySource, MasterKeyRing};
use connect_broker::store::Db;
use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_agentsecrets-connect");

/// Declares each listed `async fn name(backend: Backend)` as two tests, `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database and a data directory.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: TempDir,
    /// On PostgreSQL, the database's directory under the server's `base/`.
    pub pg_oid: Option<u32>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("connect.db").display()
            ),
            Backend::Postgres => create_postgres_database().await,
        };
        let pg_oid = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url)
                    .await
                    .expect("connect to the test database");
                let (oid,): (sqlx::postgres::types::Oid,) = sqlx::query_as(
                    "SELECT oid FROM pg_database WHERE datname = current_database()",
                )
                .fetch_one(&mut conn)
                .await
                .expect("the test database's oid");
                Some(oid.0)
            }
        };
        TestDb {
            backend,
            url,
            dir,
            pg_oid,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment that points the binary at this database.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "CONNECT_DATA_DIR".into(),
                self.data_dir().display().to_string(),
            ),
            ("DATABASE_URL".into(), self.url.clone()),
            ("CONNECT_LISTEN".into(), "127.0.0.1:0".into()),
            ("CONNECT_LOG_FORMAT".into(), "json".into()),
        ]
    }

    /// A library-level connection to the same database.
    pub async fn connect(&self) -> Db {
        Db::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

async fn create_postgres_database() -> String {
    use sqlx::Connection;
    let admin = std::env::var("CONNECT_TEST_POSTGRES_URL").expect(
        "CONNECT_TEST_POSTGRES_URL is not set: run the suite with `bash tests/run`, which starts a \
         throwaway PostgreSQL, or point it at a server where tests may create databases",
    );
    let name = format!(
        "connect_test_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the PostgreSQL test server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let mut url = url::Url::parse(&admin).expect("CONNECT_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Runs the binary with exactly `env` (plus PATH and HOME) and `args`.
pub fn cli(env: &[(String, String)], args: &[&str]) -> Output {
    command(env)
        .args(args)
        .output()
        .expect("run agentsecrets-connect")
}

/// The binary with exactly `env` (plus PATH and HOME), to add arguments to.
pub fn command(env: &[(String, String)]) -> Command {
    let mut command = Command::new(BIN);
    command.env_clear();
    for var in ["PATH", "HOME", "TMPDIR", "DBUS_SESSION_BUS_ADDRESS"] {
        if let Ok(value) = std::env::var(var) {
            command.env(var, value);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

/// A running server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log_path: PathBuf,
    _log_dir: TempDir,
}

impl Server {
    /// Starts `serve` and waits for its start-up line. On failure returns everything it logged.
    pub async fn start(env: &[(String, String)]) -> Result<Server, String> {
        let log_dir = tempfile::tempdir().expect("log directory");
        let log_path = log_dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut child = command(env)
            .arg("serve")
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn agentsecrets-connect serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(listen) = started_on(&text) {
                return Ok(Server {
                    child,
                    base: format!("http://{listen}"),
                    log_path,
                    _log_dir: log_dir,
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the server did not start within 60 s:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (no shutdown of any kind, no flush, no clean-up) and
    /// waits for it to be gone. Its database and data directory stay as they are.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn started_on(log: &str) -> Option<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|event| event["message"] == "agentsecrets-connect started")
        .and_then(|event| event["listen"].as_str().map(str::to_owned))
}

/// A partner's id and admin key.
pub struct Partner {
    pub id: String,
    pub key: String,
}

/// A database, a master key file, one partner and a running server.
pub struct TestApp {
    pub db: TestDb,
    pub server: Server,
    pub env: Vec<(String, String)>,
    pub http: reqwest::Client,
    pub partner: Partner,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, &[]).await
    }

    /// A server that the OAuth tests can send a browser back to: listening on a port chosen
    /// up front (so `CONNECT_PUBLIC_URL` and the callback URLs are right), allowed to reach
    /// loopback peers, refreshing tokens one second before they expire.
    pub async fn spawn_for_oauth(backend: Backend) -> TestApp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let public = format!("http://{address}");
        let extra = [
            ("CONNECT_LISTEN", address.as_str()),
            ("CONNECT_PUBLIC_URL", public.as_str()),
            ("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true"),
            ("CONNECT_REFRESH_MARGIN_SECS", "1"),
        ];
        TestApp::spawn_with(backend, &extra).await
    }

    /// Like `spawn`, with extra environment variables (later ones win).
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        let db = TestDb::new(backend).await;
        let mut env = db.env();
        let key_file = db.data_dir().join("master.key");
        env.push((
            "CONNECT_MASTER_KEY".into(),
            format!("file:{}", key_file.display()),
        ));
        let init = cli(&env, &["master-key", "init"]);
        assert!(
            init.status.success(),
            "master-key init: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        for (name, value) in extra {
            env.retain(|(k, _)| k != name);
            env.push(((*name).to_owned(), (*value).to_owned()));
        }
        let partner = create_partner(&env, "acme");
        let server = Server::start(&env)
            .await
            .unwrap_or_else(|log| panic!("server failed to start:\n{log}"));
        TestApp {
            db,
            server,
            env,
            http: reqwest::Client::new(),
            partner,
        }
    }

    /// SIGKILLs the server and starts a new one on the same environment: same database, same
    /// master key, same listen address.
    pub async fn kill_and_restart(&mut self) {
        self.server.kill();
        self.server = Server::start(&self.env)
            .await
            .unwrap_or_else(|log| panic!("the server failed to restart:\n{log}"));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    /// Another partner on the same server.
    pub fn new_partner(&self, name: &str) -> Partner {
        create_partner(&self.env, name)
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&self.env, args)
    }

    pub fn get(&self, key: &str, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(key)
    }

    pub fn post(&self, key: &str, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(key).json(body)
    }

    pub fn delete(&self, key: &str, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.url(path)).bearer_auth(key)
    }

    /// Creates a vault for `external_user_id` with the admin key and returns its id.
    pub async fn create_vault(&self, external_user_id: &str) -> String {
        let response = self
            .post(
                &self.partner.key,
                "/v1/vaults",
                &serde_json::json!({ "external_user_id": external_user_id }),
            )
            .send()
            .await
            .expect("POST /v1/vaults");
        assert_eq!(response.status(), 201, "create vault");
        let body: Value = response.json().await.expect("vault JSON");
        body["id"].as_str().expect("vault id").to_owned()
    }

    /// The master key ring, read from the key file the server uses.
    pub fn master_ring(&self) -> MasterKeyRing {
        let source = KeySource::File(self.db.data_dir().join("master.key"));
        connect_broker::keys::source::load(&source, self.db.data_dir(), false)
            .expect("load the test master key")
            .ring
    }

    /// Every file of this test's database that contains `needle` (on PostgreSQL: the database's
    /// own directory, the server's WAL and its shared catalogs).
    pub fn files_containing(&self, needle: &[u8]) -> Vec<PathBuf> {
        let mut roots = vec![self.db.data_dir().to_path_buf()];
        if self.db.backend == Backend::Postgres {
            let dir = std::env::var("CONNECT_TEST_POSTGRES_DATA_DIR").expect(
                "CONNECT_TEST_POSTGRES_DATA_DIR names the PostgreSQL data directory (tests/run sets it)",
            );
            // This database's files, the write-ahead log and the shared catalogs: where this
            // test's values could be; other tests' databases are not scanned.
            let dir = PathBuf::from(dir);
            let oid = self
                .db
                .pg_oid
                .expect("a PostgreSQL test database has an oid");
            roots.push(dir.join("base").join(oid.to_string()));
            roots.push(dir.join("pg_wal"));
            roots.push(dir.join("global"));
        }
        let mut found = Vec::new();
        for root in roots {
            scan(&root, needle, &mut found);
        }
        found
    }
}

fn scan(path: &Path, needle: &[u8], found: &mut Vec<PathBuf>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                scan(&entry.path(), needle, found);
            }
        }
    } else if meta.is_file()
        && let Ok(bytes) = std::fs::read(path)
        && bytes.windows(needle.len()).any(|w| w == needle)
    {
        found.push(path.to_path_buf());
    }
}

pub fn create_partner(env: &[(String, String)], name: &str) -> Partner {
    let out = cli(env, &["partner", "create", "--name", name]);
    assert!(
        out.status.success(),
        "partner create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("partner create prints JSON");
    Partner {
        id: body["partner_id"].as_str().expect("partner_id").to_owned(),
        key: body["api_key"].as_str().expect("api_key").to_owned(),
    }
}

/// Asserts a problem-details answer with `status` and `code`, and returns its body.
pub async fn expect_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "status; body: {body}");
    assert_eq!(
        content_type, "application/problem+json",
        "content type; body: {body}"
    );
    assert_eq!(body["code"], code, "code; body: {body}");
    assert_eq!(body["status"], status, "status member; body: {body}");
    for member in ["type", "title", "detail"] {
        assert!(
            body[member].is_string(),
            "problem member {member} missing: {body}"
        );
    }
    body
}

/// A deposit of a test credential into `vault_id` for `integration`.
pub fn dep<'a>(
    vault_id: &'a str,
    integration: &'a str,
) -> connect_broker::credentials::Deposit<'a> {
    connect_broker::credentials::Deposit {
        vault_id,
        integration,
        scopes: "",
        expires_at: None,
        actor: "operator",
    }
}

/// Every item of a list endpoint, all pages. `path` already carries a query string.
pub async fn all_pages(app: &TestApp, path: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let page: Value = app
            .get(&app.partner.key, &page_path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}
