//! `braid admin tenant …` and `braid admin token …`: tenants and API tokens, managed directly in the database (the bootstrap path: no token is needed to make the first one).

use super::CliError;
use crate::domain::auth::Role;
use crate::domain::quota::QuotaOverrides;
use crate::domain::records::Tenant;
use crate::engine::{Engine, ExecSettings, SystemClock};
use crate::queue::InProcessQueue;
use crate::store::Store;
use clap::Subcommand;
use std::sync::Arc;
use uuid::Uuid;

/// Where `braid admin` finds the database.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// The control planes' database: postgres://… (or sqlite://PATH for a `braid dev` data dir's braid.db).
    #[arg(long, env = "BRAID_DATABASE_URL", value_name = "URL")]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants: create, list.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set a tenant's own quotas: each flag given replaces the default; flags not given restore it.
    Quota {
        name: String,
        /// API triggers per second (on each control plane).
        #[arg(long)]
        triggers_per_second: Option<u32>,
        /// The largest burst of triggers.
        #[arg(long)]
        trigger_burst: Option<u32>,
        /// Runs queued or running at once.
        #[arg(long)]
        concurrent_runs: Option<u32>,
        /// Connected worker streams.
        #[arg(long)]
        workers: Option<u32>,
        /// Schedules.
        #[arg(long)]
        schedules: Option<u32>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a tenant; its text is printed once and stored only as a hash.
    Create {
        #[arg(long)]
        tenant: String,
        /// admin, operator, worker or read-only.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A label to recognise it by in `token list`.
        #[arg(long, default_value = "")]
        name: String,
        /// Lifetime, e.g. 30d or 12h; without it the token lasts until revoked.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tokens (never their text).
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a token: calls with it fail within a second, and its open worker streams close.
    Revoke {
        id: Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse().map_err(|e: crate::domain::ParseStateError| format!("{e} (admin, operator, worker, read-only)"))
}

async fn engine(db: &DbArgs) -> Result<(Engine, Store), CliError> {
    let store = Store::connect(&db.database_url, 2).await?;
    store.check_schema().await?;
    let engine =
        Engine::new(store.clone(), Arc::new(SystemClock), Arc::new(InProcessQueue::new()), ExecSettings::default());
    Ok((engine, store))
}

pub async fn admin(cmd: AdminCommand) -> Result<(), CliError> {
    match cmd {
        AdminCommand::Tenant(TenantCommand::Create { name, db }) => {
            let (e, store) = engine(&db).await?;
            e.create_tenant(&name).await?;
            store.close().await?;
            outln!("tenant {name} created");
        }
        AdminCommand::Tenant(TenantCommand::List { db }) => {
            let (e, store) = engine(&db).await?;
            for (name, created) in e.list_tenants().await? {
                outln!("{name}  created {}", created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            store.close().await?;
        }
        AdminCommand::Tenant(TenantCommand::Quota {
            name,
            triggers_per_second,
            trigger_burst,
            concurrent_runs,
            workers,
            schedules,
            db,
        }) => {
            let (e, store) = engine(&db).await?;
            let o = QuotaOverrides { triggers_per_second, trigger_burst, concurrent_runs, workers, schedules };
            let q = e.set_tenant_quotas(&name, o).await?;
            store.close().await?;
            outln!(
                "tenant {name}: {} triggers/s (bursts of {}), {} concurrent runs, {} workers, {} schedules",
                q.triggers_per_second,
                q.trigger_burst,
                q.concurrent_runs,
                q.workers,
                q.schedules
            );
        }
        AdminCommand::Token(TokenCommand::Create { tenant, role, name, expires_in, db }) => {
            let (e, store) = engine(&db).await?;
            let made = e.create_token(&tenant, role, &name, expires_in).await?;
            store.close().await?;
            outln!("{}", made.text);
            eprintln!(
                "token {} ({role} of tenant {tenant}{}) created; the line above is its only copy",
                made.token.id,
                made.token.expires_at.map(|t| format!(", expires {}", t.to_rfc3339())).unwrap_or_default()
            );
        }
        AdminCommand::Token(TokenCommand::List { tenant, db }) => {
            let (e, store) = engine(&db).await?;
            let tenant = tenant.map(Tenant);
            for t in e.list_tokens(tenant.as_ref()).await? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(r), _) => format!("revoked {}", r.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    (None, Some(x)) => format!("expires {}", x.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    (None, None) => "active".to_owned(),
                };
                outln!("{}  {:<10} {:<9} {:<24} {state}", t.id, t.tenant.as_str(), t.role.as_str(), t.name);
            }
            store.close().await?;
        }
        AdminCommand::Token(TokenCommand::Revoke { id, db }) => {
            let (e, store) = engine(&db).await?;
            let t = e.revoke_token(id).await?;
            store.close().await?;
            outln!("token {} ({} of tenant {}) revoked", t.id, t.role, t.tenant.as_str());
        }
    }
    Ok(())
}
