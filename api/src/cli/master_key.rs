//! `agentsecrets-connect master-key …`: create, inspect, rotate and retire the master key.
//!
//! A rotation adds a version to the source, waits until every running replica holds it, then
//! rewraps everything sealed to older versions in batches; running it again after a crash
//! continues where it stopped. Retirement is a separate, explicit step (`retire`), refused
//! while anything still uses the version. The README's "Rotating the master key" has the
//! operator steps per source.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use connect_broker::fleet::FleetSettings;
use connect_broker::keys::change::{self, Stored};
use connect_broker::keys::{self, KeySource, MasterKeyRing};
use connect_broker::rotation::{self, Sealed};
use connect_broker::secret::{ExposeSecret, SecretString};
use connect_broker::store::{Db, master_keys};

use crate::config::Config;
use crate::server;

#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Create the master key in the configured source; refuses to overwrite one.
    Init,
    /// Show the source, the versions, what each seals, the rotation and the replicas.
    Status,
    /// Add a new master key version and rewrap everything sealed to older ones. Run it again
    /// to continue an interrupted rotation; once complete it does nothing more.
    Rotate {
        /// Rows rewrapped per transaction.
        #[arg(long, default_value_t = rotation::DEFAULT_BATCH,
              value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
        /// Pause between two batches, to spread the load on the database.
        #[arg(long, default_value_t = 0)]
        batch_pause_ms: u64,
        /// How long to wait for every running replica to load the new version before
        /// rewrapping anything.
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
    },
    /// Remove an old version from the source once nothing in the database uses it.
    Retire {
        /// The version to retire: `1` or `mk1`.
        #[arg(long, value_parser = parse_version)]
        version: i64,
    },
}

fn parse_version(text: &str) -> Result<i64, String> {
    text.trim()
        .trim_start_matches("mk")
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| "expected a version such as 2 or mk2".to_owned())
}

pub async fn run(command: MasterKeyCommand, config: Config) -> anyhow::Result<()> {
    match command {
        MasterKeyCommand::Init => init(config).await,
        MasterKeyCommand::Status => status(config).await,
        MasterKeyCommand::Rotate {
            batch_size,
            batch_pause_ms,
            wait_secs,
        } => {
            let pace = Pace {
                batch_size,
                pause: Duration::from_millis(batch_pause_ms),
                wait: Duration::from_secs(wait_secs),
            };
            rotate(config, pace).await
        }
        MasterKeyCommand::Retire { version } => retire(config, version).await,
    }
}

async fn init(config: Config) -> anyhow::Result<()> {
    let source = KeySource::parse(config.master_key.as_deref())?;
    let data_dir = config.data_dir.clone();
    let (resolved, material) =
        tokio::task::spawn_blocking(move || keys::source::init(&source, &data_dir)).await??;
    match material {
        Some(material) => {
            eprintln!("set {resolved} to the following value in the service's environment:");
            print_material(&material);
        }
        None => eprintln!("master key mk1 created in {resolved}"),
    }
    Ok(())
}

/// Key material on one line, newlines written as `\n`, for an environment variable.
fn print_material(material: &SecretString) {
    println!(
        "{}",
        material.expose_secret().trim_end().replace('\n', "\\n")
    );
}

async fn open(config: &Config) -> anyhow::Result<Db> {
    let db = server::open_database(config).await?;
    db.migrate().await.context("database migration failed")?;
    Ok(db)
}

async fn status(config: Config) -> anyhow::Result<()> {
    let db = open(&config).await?;
    let outcome = server::load_master_key(&config, &db).await?;
    let registered = master_keys::list(&db).await?;
    let state = rotation::state(&db).await?;
    let versions: Vec<_> = registered
        .iter()
        .map(|r| {
            let usage = state
                .usage
                .iter()
                .find(|u| u.version == r.version)
                .cloned()
                .unwrap_or_default();
            serde_json::json!({
                "version": format!("mk{}", r.version),
                "recipient": r.recipient,
                "loaded": outcome.ring.holds(r.version),
                "current": r.version == state.current,
                "retired": r.retired_at.is_some(),
                "vaults": usage.vault_keys,
                "client_secrets": usage.client_secrets,
                "webhook_secrets": usage.webhook_secrets,
                "pkce_verifiers": usage.pkce_verifiers,
            })
        })
        .collect();
    let replicas = master_keys::live_replicas(&db, FleetSettings::default().lease).await?;
    let status = serde_json::json!({
        "source": outcome.resolved.to_string(),
        "current": format!("mk{}", state.current),
        "rotation": {
            "state": state.state,
            "target": format!("mk{}", state.current),
            "remaining": state.remaining,
            "older_versions": state.older.iter().map(|v| format!("mk{v}")).collect::<Vec<_>>(),
        },
        "versions": versions,
        "replicas": replicas.iter().map(|(id, version)| serde_json::json!({
            "id": id,
            "master_key_version": version.map(|v| format!("mk{v}")),
        })).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&status)?);
    Ok(())
}

/// How a rotation proceeds.
struct Pace {
    batch_size: i64,
    pause: Duration,
    wait: Duration,
}

async fn rotate(config: Config, pace: Pace) -> anyhow::Result<()> {
    let db = open(&config).await?;
    let outcome = server::load_master_key(&config, &db).await?;
    let source = outcome.resolved.clone();
    let registered = master_keys::list(&db).await?;
    let retired: Vec<i64> = registered
        .iter()
        .filter(|r| r.retired_at.is_some())
        .map(|r| r.version)
        .collect();
    let live: Vec<i64> = registered
        .iter()
        .filter(|r| r.retired_at.is_none())
        .map(|r| r.version)
        .collect();
    let (ring, target) = if live.len() > 1 {
        let target = *live.iter().max().expect("two versions");
        eprintln!("continuing the rotation to mk{target}");
        (outcome.ring, target)
    } else {
        let highest = registered.iter().map(|r| r.version).max().unwrap_or(0);
        let current = outcome
            .ring
            .without(&retired)
            .with_context(|| format!("{source} holds only retired master key versions"))?;
        let (ring, target) = current.with_new_version(highest);
        let (stored, ring) = store(&source, ring).await?;
        if let Stored::ForOperator(material) = stored {
            eprintln!(
                "{source} cannot be changed from here. Set it to the value below (it holds the \
                 current versions and the new mk{target}) wherever the service runs, restart \
                 every replica with it, then run `agentsecrets-connect master-key rotate` again \
                 with the same value to rewrap. Until then nothing has changed."
            );
            print_material(&material);
            return Ok(());
        }
        eprintln!("mk{target} added to {source}");
        master_keys::reconcile(&db, &ring, &source.to_string()).await?;
        (ring, target)
    };
    rotation::announce(&db).await?;
    wait_for_replicas(&db, target, pace.wait).await?;

    for kind in Sealed::ALL {
        let mut done = 0;
        loop {
            let batch = rotation::rewrap_batch(&db, &ring, kind, target, pace.batch_size).await?;
            if batch.found == 0 {
                break;
            }
            done += batch.changed;
            eprintln!("rewrapped {done} {} to mk{target}", kind.label());
            if !pace.pause.is_zero() {
                tokio::time::sleep(pace.pause).await;
            }
        }
    }
    let state = rotation::state(&db).await?;
    let older: Vec<String> = state.older.iter().map(|v| format!("mk{v}")).collect();
    eprintln!(
        "rotation to mk{target} complete: nothing is sealed to {}. Retire each with \
         `agentsecrets-connect master-key retire --version N`",
        older.join(", ")
    );
    Ok(())
}

async fn store(source: &KeySource, ring: MasterKeyRing) -> anyhow::Result<(Stored, MasterKeyRing)> {
    let source = source.clone();
    let stored = tokio::task::spawn_blocking(move || {
        change::store(&source, &ring).map(|stored| (stored, ring))
    })
    .await
    .context("the master key writer stopped")??;
    Ok(stored)
}

/// Rewrapping to a version a replica lacks would cut it off from those vaults: wait until
/// every live replica reports holding `target`.
async fn wait_for_replicas(db: &Db, target: i64, wait: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        let behind = rotation::replicas_below(db, target, FleetSettings::default()).await?;
        if behind.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "replicas {behind:?} have not loaded mk{target} within {} s, so nothing was \
                 rewrapped; give their master-key source mk{target} (copy the key file, or set \
                 the environment variable and restart them), then run `master-key rotate` again",
                wait.as_secs()
            );
        }
        if !told {
            eprintln!("waiting for replicas {behind:?} to load mk{target}");
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn retire(config: Config, version: i64) -> anyhow::Result<()> {
    let db = open(&config).await?;
    let outcome = server::load_master_key(&config, &db).await?;
    let source = outcome.resolved.clone();
    let newly = rotation::retire(&db, version, FleetSettings::default()).await?;
    if !outcome.ring.holds(version) {
        eprintln!("mk{version} retired; {source} no longer holds it");
        return Ok(());
    }
    let retired: Vec<i64> = master_keys::list(&db)
        .await?
        .into_iter()
        .filter(|r| r.retired_at.is_some())
        .map(|r| r.version)
        .collect();
    let ring = outcome
        .ring
        .without(&retired)
        .with_context(|| format!("{source} would hold no unretired version"))?;
    match store(&source, ring).await?.0 {
        Stored::Written => eprintln!(
            "mk{version} {} and removed from {source}",
            if newly { "retired" } else { "was retired" }
        ),
        Stored::ForOperator(material) => {
            eprintln!(
                "mk{version} retired. {source} cannot be changed from here: set it to the value \
                 below (without mk{version}) wherever the service runs and restart the replicas"
            );
            print_material(&material);
        }
    }
    Ok(())
}
