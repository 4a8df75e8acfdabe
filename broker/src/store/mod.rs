//! The database: SQLite (embedded default) or PostgreSQL (several replicas), through one sqlx
//! `Any` pool so that every query is written once.
//!
//! Portability rules every query here follows:
//! - placeholders are `$1, $2, …` (both drivers accept them);
//! - integers are `BIGINT` (epoch milliseconds for times), text is `TEXT`, ciphertext is a blob;
//! - a transaction's first statement writes. SQLite upgrades a read transaction to a write one
//!   only if no other writer committed in between, and fails at once otherwise; starting with a
//!   write takes the lock up front (PostgreSQL takes a row lock the same way).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

pub mod master_keys;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool and the backend behind it.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite database file, for the audit writer's own connection.
    sqlite_path: Option<PathBuf>,
}

/// The default SQLite URL for a data directory.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("connect.db").display()
    )
}

/// The URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparseable database URL)".into(),
    }
}

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`).
    pub async fn connect(url: &str) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(sqlx::Error::Configuration(
                "DATABASE_URL must start with sqlite: or postgres:".into(),
            ));
        };
        if backend == Backend::Sqlite {
            create_sqlite_parent(url)?;
        }
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            // A SQLite connection is a file handle in this process and cannot go stale; the
            // round trip to its worker thread that a check costs is saved. PostgreSQL
            // connections are checked, since the server may have dropped them.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(*pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        // The file SQLite itself opened, as it resolved the URL.
        let sqlite_path = match backend {
            Backend::Sqlite => {
                let file: String =
                    sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                        .fetch_one(&pool)
                        .await?;
                // Empty for an in-memory or temporary database, which `mode=memory` still opens.
                if file.is_empty() {
                    return Err(sqlx::Error::Configuration(
                        "the SQLite database must be a file (an in-memory one gives each pooled connection its own database)".into(),
                    ));
                }
                Some(PathBuf::from(file))
            }
            Backend::Postgres => None,
        };
        Ok(Db {
            pool,
            backend,
            sqlite_path,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite database file (`None` on PostgreSQL).
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
        }
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// After destroying key material: make SQLite move the overwritten pages out of the
    /// write-ahead log into the main file (where `secure_delete` has zeroed the old content),
    /// so the destroyed bytes do not linger in the WAL. Best effort; PostgreSQL keeps dead row
    /// versions until vacuum (see README, Limitations).
    pub async fn flush_destroyed(&self) {
        if self.backend == Backend::Sqlite
            && let Err(err) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
        {
            tracing::warn!(error = %err, "WAL checkpoint after key destruction failed");
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Applied to every new SQLite connection: WAL for concurrent readers, zeroing of deleted
/// content, enforced foreign keys, waiting (not failing) on a busy writer, and full fsync so a
/// committed change survives a crash. Temporary data (statement journals, sorts) stays in memory:
/// no temporary file to create, write and unlink per batch, and no page image outside the
/// database and its WAL.
pub(crate) const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 15000",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA journal_mode = WAL",
    "PRAGMA secure_delete = ON",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = FULL",
];

fn create_sqlite_parent(url: &str) -> Result<(), sqlx::Error> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Err(sqlx::Error::Configuration(
            "the SQLite database must be a file (an in-memory one gives each pooled connection its own database)".into(),
        ));
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(sqlx::Error::Io)?;
    }
    // Created here, readable by the service's user only; SQLite gives its WAL and shared-memory
    // files the database file's permissions.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(sqlx::Error::Io)?;
    Ok(())
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password_of_a_database_url() {
        let shown = redact_url("postgres://app:hunter2@db:5432/connect");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("app"));
    }

    #[tokio::test]
    async fn a_sqlite_database_that_is_not_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let memory = format!("sqlite://{}?mode=memory", dir.path().join("x.db").display());
        for url in [memory.as_str(), "sqlite::memory:"] {
            let err = Db::connect(url).await.unwrap_err();
            assert!(err.to_string().contains("must be a file"), "{url}: {err}");
        }
        let file = sqlite_url(dir.path());
        let db = Db::connect(&file).await.unwrap();
        assert_eq!(
            db.sqlite_path(),
            Some(
                dir.path()
                    .join("connect.db")
                    .canonicalize()
                    .unwrap()
                    .as_path()
            )
        );
    }
}
