//! The operator's command line.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use connect_broker::secret::ExposeSecret;
use connect_broker::{ids, partners};

use crate::config::Config;
use crate::{server, telemetry};
use master_key::MasterKeyCommand;

mod master_key;

#[derive(Debug, Parser)]
#[command(
    name = "agentsecrets-connect",
    version,
    about = "AgentSecrets Connect: sealed credential vaults, hosted OAuth and an injection proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate the database if needed, then serve.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage partners.
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Manage the master key.
    #[command(subcommand, name = "master-key")]
    MasterKey(MasterKeyCommand),
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
enum PartnerCommand {
    /// Create a partner; prints its id and an admin API key, once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Suspend a partner: every one of its API keys fails from the next request on.
    Suspend {
        #[arg(long)]
        id: String,
    },
    /// Resume a suspended partner.
    Resume {
        #[arg(long)]
        id: String,
    },
    /// List partners.
    List,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        print!("{}", crate::openapi::document());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, Command::Serve);
    telemetry::init_logging(config.log_format, !serving);
    let result = if serving {
        // actix-web runs its own system: one runtime for the acceptor, one per worker.
        actix_web::rt::System::new().block_on(server::serve(config))
    } else {
        match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(run(cli.command, config)),
            Err(err) => Err(anyhow::Error::new(err).context("cannot start the runtime")),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "agentsecrets-connect failed");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve | Command::Openapi => unreachable!("handled before this runtime starts"),
        Command::Migrate => {
            let db = server::open_database(&config).await?;
            db.migrate().await.context("database migration failed")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Partner(command) => partner(command, config).await,
        Command::MasterKey(command) => master_key::run(command, config).await,
    }
}

async fn partner(command: PartnerCommand, config: Config) -> anyhow::Result<()> {
    let db = server::open_database(&config).await?;
    db.migrate().await.context("database migration failed")?;
    match command {
        PartnerCommand::Create { name } => {
            let (partner, key) = partners::create(&db, &name).await?;
            let out =
                serde_json::json!({ "partner_id": partner.id, "api_key": key.expose_secret() });
            println!("{out}");
        }
        PartnerCommand::Suspend { id } | PartnerCommand::Resume { id }
            if !ids::is_valid(ids::Kind::Partner, &id) =>
        {
            anyhow::bail!("no partner {id}");
        }
        PartnerCommand::Suspend { id } => {
            print_partner(&partners::set_status(&db, &id, true).await?)
        }
        PartnerCommand::Resume { id } => {
            print_partner(&partners::set_status(&db, &id, false).await?)
        }
        PartnerCommand::List => {
            for partner in partners::list_all(&db).await? {
                print_partner(&partner);
            }
        }
    }
    Ok(())
}

fn print_partner(partner: &partners::Partner) {
    println!(
        "{}",
        serde_json::json!({ "partner_id": partner.id, "name": partner.name, "status": partner.status })
    );
}
