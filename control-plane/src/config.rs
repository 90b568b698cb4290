//! Configuration of `braid server`, `braid dev` and `braid migrate`: flags, `BRAID_*` env, an optional TOML file.

use crate::domain::quota::Quotas;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a configuration was refused; the message lists every problem.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<String>);

/// The optional TOML file of `braid server --config FILE`; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub grpc_listen: Option<String>,
    pub http_listen: Option<String>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub db_max_connections: Option<u32>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub object_store: Option<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(vec![format!("config file {}: {e}", path.display())]))?;
        toml::from_str(&text).map_err(|e| ConfigError(vec![format!("config file {}: {e}", path.display())]))
    }
}

/// Values given on the command line or in the environment (clap merges the two); they win over the file.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServerArgs {
    /// TOML file with any of: grpc_listen, http_listen, database_url, redis_url, db_max_connections,
    /// tls_cert, tls_key, tls_client_ca, object_store.
    #[arg(long, env = "BRAID_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the gRPC API [default: 127.0.0.1:7400].
    #[arg(long, env = "BRAID_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<String>,
    /// Address of the HTTP endpoints: /metrics, /healthz [default: 127.0.0.1:7401].
    #[arg(long, env = "BRAID_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// PostgreSQL URL, e.g. postgres://braid@127.0.0.1:5432/braid (required).
    #[arg(long, env = "BRAID_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Redis URL, e.g. redis://127.0.0.1:6379/ (required).
    #[arg(long, env = "BRAID_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
    /// Serve without authentication: every call acts as an admin of tenant "default" (trusted networks and tests only).
    #[arg(long, env = "BRAID_INSECURE")]
    pub insecure: bool,
    /// `/metrics` answers only a bearer token that may read (by default it is open, like `/healthz`).
    #[arg(long, env = "BRAID_METRICS_NEED_TOKEN")]
    pub metrics_need_token: bool,
    /// Size of the PostgreSQL connection pool [default: 16].
    #[arg(long, env = "BRAID_DB_MAX_CONNECTIONS", value_name = "N")]
    pub db_max_connections: Option<u32>,
    /// Where run inputs and task outputs over --payload-inline-max are kept: file:///dir (or /dir),
    /// or s3://bucket/prefix with the usual AWS_* variables (AWS_ENDPOINT for S3-compatible stores)
    /// [default: ./braid-objects]. Several control planes need one shared store.
    #[arg(long, env = "BRAID_OBJECT_STORE", value_name = "URL")]
    pub object_store: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// TLS on the gRPC port, shared by `braid server` and `braid dev` (the HTTP port stays plain HTTP).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate (chain) of the gRPC port; with --tls-key the port serves TLS only.
    #[arg(long, env = "BRAID_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "BRAID_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): every client must present a certificate signed by one (mTLS). Needs --tls-cert.
    #[arg(long, env = "BRAID_TLS_CLIENT_CA", value_name = "PATH")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Timing of leases and repair loops, shared by `braid server` and `braid dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// How long a lease lasts without a heartbeat (workers heartbeat every third of it).
    #[arg(long, env = "BRAID_LEASE_TTL", value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease_ttl: std::time::Duration,
    /// How long a ready task may sit in the queue before the reconciler publishes it again.
    #[arg(long, env = "BRAID_RECONCILE_GRACE", value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub reconcile_grace: std::time::Duration,
    /// How often the reaper looks for expired leases.
    #[arg(long, env = "BRAID_REAPER_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    pub reaper_interval: std::time::Duration,
    /// How long finished runs are kept when their workflow sets no `settings.retention`.
    #[arg(long, env = "BRAID_RETENTION", value_name = "DURATION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub retention: std::time::Duration,
    /// How often finished runs past their retention are looked for (and deleted in batches).
    #[arg(long, env = "BRAID_RETENTION_INTERVAL", value_name = "DURATION", default_value = "1m", value_parser = humantime::parse_duration)]
    pub retention_interval: std::time::Duration,
    /// A ready task due this long is offered ahead of newer work (its type's high-priority lane), so low priority never starves.
    #[arg(long, env = "BRAID_PRIORITY_AGING", value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub priority_aging: std::time::Duration,
    /// Default quota: API triggers per second per tenant, on each control plane (`braid admin tenant quota` overrides it per tenant).
    #[arg(long, env = "BRAID_QUOTA_TRIGGERS_PER_SECOND", value_name = "N", default_value_t = Quotas::default().triggers_per_second)]
    pub quota_triggers_per_second: u32,
    /// Default quota: the largest burst of triggers (the bucket's size).
    #[arg(long, env = "BRAID_QUOTA_TRIGGER_BURST", value_name = "N", default_value_t = Quotas::default().trigger_burst)]
    pub quota_trigger_burst: u32,
    /// Default quota: runs queued or running at once, per tenant.
    #[arg(long, env = "BRAID_QUOTA_CONCURRENT_RUNS", value_name = "N", default_value_t = Quotas::default().concurrent_runs)]
    pub quota_concurrent_runs: u32,
    /// Default quota: connected worker streams, per tenant.
    #[arg(long, env = "BRAID_QUOTA_WORKERS", value_name = "N", default_value_t = Quotas::default().workers)]
    pub quota_workers: u32,
    /// Default quota: schedules, per tenant.
    #[arg(long, env = "BRAID_QUOTA_SCHEDULES", value_name = "N", default_value_t = Quotas::default().schedules)]
    pub quota_schedules: u32,
    /// Run inputs and task outputs larger than this go to object storage (bytes; KiB and MiB suffixes work).
    #[arg(long, env = "BRAID_PAYLOAD_INLINE_MAX", value_name = "BYTES", default_value = "256KiB", value_parser = parse_bytes)]
    pub payload_inline_max: usize,
    /// Largest run input or task output accepted (bytes, at most 32MiB).
    #[arg(long, env = "BRAID_PAYLOAD_MAX", value_name = "BYTES", default_value = "8MiB", value_parser = parse_bytes)]
    pub payload_max: usize,
}

/// A size in bytes: a whole number with an optional `KiB`/`K`/`KB` or `MiB`/`M`/`MB` suffix (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: usize =
        number.parse().map_err(|_| format!("{text:?} is not a size in bytes (e.g. 262144, 256KiB, 8MiB)"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("{text:?} is not a size in bytes (e.g. 262144, 256KiB, 8MiB)")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

impl Default for ExecArgs {
    fn default() -> Self {
        let d = crate::engine::ExecSettings::default();
        Self {
            lease_ttl: d.lease_ttl,
            reconcile_grace: d.reconcile_grace,
            reaper_interval: d.reaper_interval,
            retention: d.retention,
            retention_interval: d.retention_interval,
            priority_aging: d.priority_aging,
            quota_triggers_per_second: d.quotas.triggers_per_second,
            quota_trigger_burst: d.quotas.trigger_burst,
            quota_concurrent_runs: d.quotas.concurrent_runs,
            quota_workers: d.quotas.workers,
            quota_schedules: d.quotas.schedules,
            payload_inline_max: d.payloads.inline_max,
            payload_max: d.payloads.max,
        }
    }
}

impl ExecArgs {
    /// The engine settings these flags describe, or every problem with them.
    pub fn settings(&self) -> Result<crate::engine::ExecSettings, ConfigError> {
        let mut problems = Vec::new();
        let min = std::time::Duration::from_millis(300);
        if self.lease_ttl < min {
            problems.push(format!("lease_ttl: {:?} is too short (at least {min:?})", self.lease_ttl));
        }
        if self.reaper_interval.is_zero() {
            problems.push("reaper_interval: must be more than zero".into());
        }
        if self.reconcile_grace.is_zero() {
            problems.push("reconcile_grace: must be more than zero".into());
        }
        let (min, max) = (crate::domain::limits::MIN_RETENTION, crate::domain::limits::MAX_RETENTION);
        if self.retention < min || self.retention > max {
            problems.push(format!(
                "retention: {} is out of range ({} to {}d)",
                humantime::format_duration(self.retention),
                humantime::format_duration(min),
                max.as_secs() / 86_400
            ));
        }
        if self.retention_interval.is_zero() {
            problems.push("retention_interval: must be more than zero".into());
        }
        for (name, v) in [
            ("quota_triggers_per_second", self.quota_triggers_per_second),
            ("quota_trigger_burst", self.quota_trigger_burst),
        ] {
            if v == 0 {
                problems.push(format!("{name}: must be at least 1"));
            }
        }
        let payloads =
            crate::domain::payload_ref::PayloadLimits { inline_max: self.payload_inline_max, max: self.payload_max };
        problems.extend(payloads.problems());
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        let mut s = crate::engine::ExecSettings::default().with_lease_ttl(self.lease_ttl);
        s.payloads = payloads;
        s.reconcile_grace = self.reconcile_grace;
        s.reaper_interval = self.reaper_interval;
        s.retention = self.retention;
        s.retention_interval = self.retention_interval;
        s.priority_aging = self.priority_aging;
        s.quotas = Quotas {
            triggers_per_second: self.quota_triggers_per_second,
            trigger_burst: self.quota_trigger_burst,
            concurrent_runs: self.quota_concurrent_runs,
            workers: self.quota_workers,
            schedules: self.quota_schedules,
        };
        Ok(s)
    }
}

/// A validated configuration of `braid server`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    pub db_max_connections: u32,
    pub exec: crate::engine::ExecSettings,
    /// TLS on the gRPC port (`None`: plaintext).
    pub tls: Option<crate::app::tls::ServerTls>,
    /// Where large payloads are kept (a URL [`crate::objects::PayloadStore::open`] takes).
    pub object_store: String,
}

/// The object store of `braid server` when none is given: `braid-objects` in the working directory.
pub const DEFAULT_OBJECT_STORE_DIR: &str = "braid-objects";

/// `url` as `PayloadStore::open` takes it: a relative directory is made absolute (against the
/// working directory); a problem is pushed for a URL that does not open.
pub fn object_store_url(field: &str, url: &str, problems: &mut Vec<String>) -> String {
    let is_url = url.contains("://") || url.starts_with('/');
    let url = if is_url {
        url.to_owned()
    } else {
        match std::path::absolute(url) {
            Ok(p) => format!("file://{}", p.display()),
            Err(e) => {
                problems.push(format!("{field}: {url:?}: {e}"));
                return url.to_owned();
            }
        }
    };
    if let Err(e) = crate::objects::PayloadStore::open(&url) {
        problems.push(format!("{field}: {e}"));
    }
    url
}

pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:7400";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:7401";
pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 16;

fn addr(field: &str, value: &str, problems: &mut Vec<String>) -> Option<SocketAddr> {
    value.parse().map_err(|_| problems.push(format!("{field}: {value:?} is not an address like 127.0.0.1:7400"))).ok()
}

/// Checks that a database URL names PostgreSQL.
pub fn check_postgres_url(field: &str, url: &str, problems: &mut Vec<String>) {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        problems.push(format!("{field}: {url:?} is not a PostgreSQL URL (postgres://user@host:port/db)"));
    }
}

impl ServerConfig {
    /// Merges flags and env (`args`) over the file named by `--config`, over the defaults, and validates.
    pub fn resolve(args: &ServerArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let pick = |a: &Option<String>, f: Option<String>| a.clone().or(f);
        let mut problems = Vec::new();
        let exec = match args.exec.settings() {
            Ok(s) => Some(s),
            Err(ConfigError(p)) => {
                problems.extend(p);
                None
            }
        };
        let grpc = pick(&args.grpc_listen, file.grpc_listen).unwrap_or_else(|| DEFAULT_GRPC_LISTEN.to_owned());
        let http = pick(&args.http_listen, file.http_listen).unwrap_or_else(|| DEFAULT_HTTP_LISTEN.to_owned());
        let grpc_listen = addr("grpc_listen", &grpc, &mut problems);
        let http_listen = addr("http_listen", &http, &mut problems);
        let database_url = pick(&args.database_url, file.database_url).unwrap_or_default();
        if database_url.is_empty() {
            problems.push(
                "database_url: required (--database-url, BRAID_DATABASE_URL, or database_url in the file)".into(),
            );
        } else {
            check_postgres_url("database_url", &database_url, &mut problems);
        }
        let redis_url = pick(&args.redis_url, file.redis_url).unwrap_or_default();
        if redis_url.is_empty() {
            problems.push("redis_url: required (--redis-url, BRAID_REDIS_URL, or redis_url in the file)".into());
        } else if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
            problems.push(format!("redis_url: {redis_url:?} is not a Redis URL (redis://host:port/)"));
        }
        let db_max_connections =
            args.db_max_connections.or(file.db_max_connections).unwrap_or(DEFAULT_DB_MAX_CONNECTIONS);
        if db_max_connections == 0 {
            problems.push("db_max_connections: must be at least 1".into());
        }
        let tls_args = TlsArgs {
            tls_cert: args.tls.tls_cert.clone().or(file.tls_cert),
            tls_key: args.tls.tls_key.clone().or(file.tls_key),
            tls_client_ca: args.tls.tls_client_ca.clone().or(file.tls_client_ca),
        };
        let tls = match crate::app::tls::ServerTls::load(&tls_args) {
            Ok(tls) => tls,
            Err(ConfigError(p)) => {
                problems.extend(p);
                None
            }
        };
        let object_store =
            pick(&args.object_store, file.object_store).unwrap_or_else(|| DEFAULT_OBJECT_STORE_DIR.to_owned());
        let object_store = object_store_url("object_store", &object_store, &mut problems);
        if grpc_listen.is_some() && grpc_listen == http_listen && grpc_listen.is_some_and(|a| a.port() != 0) {
            problems.push(format!("http_listen: {http} is also the gRPC address; they need different ports"));
        }
        match (grpc_listen, http_listen, exec, problems.is_empty()) {
            (Some(grpc_listen), Some(http_listen), Some(exec), true) => Ok(Self {
                grpc_listen,
                http_listen,
                database_url,
                redis_url,
                db_max_connections,
                exec,
                tls,
                object_store,
            }),
            _ => Err(ConfigError(problems)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServerArgs {
        ServerArgs {
            database_url: Some("postgres://braid@127.0.0.1:5432/braid".into()),
            redis_url: Some("redis://127.0.0.1:6379/".into()),
            ..ServerArgs::default()
        }
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let c = ServerConfig::resolve(&args()).unwrap();
        assert_eq!(c.grpc_listen.to_string(), DEFAULT_GRPC_LISTEN);
        assert_eq!(c.http_listen.to_string(), DEFAULT_HTTP_LISTEN);
        assert_eq!(c.db_max_connections, DEFAULT_DB_MAX_CONNECTIONS);
    }

    #[test]
    fn every_problem_is_listed() {
        let a = ServerArgs {
            grpc_listen: Some("nowhere".into()),
            database_url: Some("mysql://x".into()),
            redis_url: None,
            ..ServerArgs::default()
        };
        let e = ServerConfig::resolve(&a).unwrap_err().to_string();
        assert!(e.contains("grpc_listen: \"nowhere\""), "{e}");
        assert!(e.contains("database_url: \"mysql://x\" is not a PostgreSQL URL"), "{e}");
        assert!(e.contains("redis_url: required"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("braid.toml");
        std::fs::write(
            &path,
            "grpc_listen = \"127.0.0.1:9000\"\nhttp_listen = \"127.0.0.1:9001\"\ndb_max_connections = 4\n",
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path);
        a.http_listen = Some("127.0.0.1:9101".into());
        let c = ServerConfig::resolve(&a).unwrap();
        assert_eq!(c.grpc_listen.port(), 9000);
        assert_eq!(c.http_listen.port(), 9101);
        assert_eq!(c.db_max_connections, 4);
    }

    #[test]
    fn payload_limits_and_the_object_store_have_defaults_and_bounds() {
        let c = ServerConfig::resolve(&args()).unwrap();
        assert_eq!((c.exec.payloads.inline_max, c.exec.payloads.max), (256 * 1024, 8 * 1024 * 1024));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.object_store, format!("file://{}", cwd.join("braid-objects").display()));
        let mut a = args();
        a.object_store = Some("ftp://nope".into());
        a.exec.payload_max = 64 * 1024 * 1024;
        a.exec.payload_inline_max = 65 * 1024 * 1024;
        let e = ServerConfig::resolve(&a).unwrap_err().to_string();
        assert!(e.contains("object_store: object store \"ftp://nope\" is not an object store URL"), "{e}");
        assert!(e.contains("payload_max: 67108864 bytes is out of range (1 to 33554432)"), "{e}");
        assert!(e.contains("payload_inline_max: 68157440 bytes is larger than payload_max"), "{e}");
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_bytes("262144"), Ok(262_144));
        assert_eq!(parse_bytes("256KiB"), Ok(262_144));
        assert_eq!(parse_bytes("256k"), Ok(262_144));
        assert_eq!(parse_bytes("8MiB"), Ok(8 << 20));
        assert_eq!(parse_bytes("8 MB"), Ok(8 << 20));
        assert!(parse_bytes("8GiB").unwrap_err().contains("is not a size in bytes"));
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn retention_defaults_to_thirty_days_and_is_bounded() {
        let c = ServerConfig::resolve(&args()).unwrap();
        assert_eq!(c.exec.retention, std::time::Duration::from_secs(30 * 24 * 60 * 60));
        assert_eq!(c.exec.retention_interval, std::time::Duration::from_secs(60));
        let mut a = args();
        a.exec.retention = std::time::Duration::from_secs(1);
        a.exec.retention_interval = std::time::Duration::ZERO;
        let e = ServerConfig::resolve(&a).unwrap_err().to_string();
        assert!(e.contains("retention: 1s is out of range (1m to 3650d)"), "{e}");
        assert!(e.contains("retention_interval: must be more than zero"), "{e}");
    }

    /// A self-signed certificate and its key as PEM files in `dir`: (cert, key).
    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn tls_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "server");
        let (ca, _) = self_signed(dir.path(), "ca");
        assert_eq!(ServerConfig::resolve(&args()).unwrap().tls, None, "TLS is off without flags");
        let mut a = args();
        a.tls = TlsArgs { tls_cert: Some(cert.clone()), tls_key: Some(key.clone()), tls_client_ca: None };
        assert!(!ServerConfig::resolve(&a).unwrap().tls.expect("TLS on").mutual());
        a.tls.tls_client_ca = Some(ca);
        assert!(ServerConfig::resolve(&a).unwrap().tls.expect("TLS on").mutual());
        // The file's keys work like the flags.
        let file = dir.path().join("braid.toml");
        std::fs::write(&file, format!("tls_cert = {:?}\ntls_key = {:?}\n", cert, key)).unwrap();
        let mut a = args();
        a.config = Some(file);
        assert!(ServerConfig::resolve(&a).unwrap().tls.is_some());
    }

    #[test]
    fn tls_problems_name_the_flag_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "server");
        let (other_cert, other_key) = self_signed(dir.path(), "other");
        let missing = dir.path().join("missing.pem");
        let resolve = |tls_cert: Option<&PathBuf>, tls_key: Option<&PathBuf>, tls_client_ca: Option<&PathBuf>| {
            let mut a = args();
            a.tls = TlsArgs {
                tls_cert: tls_cert.cloned(),
                tls_key: tls_key.cloned(),
                tls_client_ca: tls_client_ca.cloned(),
            };
            ServerConfig::resolve(&a).unwrap_err().to_string()
        };
        let e = resolve(Some(&cert), None, None);
        assert!(e.contains(&format!("--tls-key: required with --tls-cert {}", cert.display())), "{e}");
        let e = resolve(None, Some(&key), None);
        assert!(e.contains("--tls-cert: required with --tls-key"), "{e}");
        let e = resolve(None, None, Some(&cert));
        assert!(e.contains(&format!("--tls-client-ca {}: needs --tls-cert and --tls-key", cert.display())), "{e}");
        let e = resolve(Some(&missing), Some(&cert), Some(&key));
        assert!(e.contains(&format!("--tls-cert {}: cannot read", missing.display())), "{e}");
        assert!(e.contains(&format!("--tls-key {}: holds no PEM private key", cert.display())), "{e}");
        assert!(e.contains(&format!("--tls-client-ca {}: holds no PEM certificate", key.display())), "{e}");
        let e = resolve(Some(&cert), Some(&other_key), None);
        assert!(e.contains(&format!("--tls-cert {} and --tls-key {}:", cert.display(), other_key.display())), "{e}");
        assert!(resolve(Some(&other_cert), Some(&key), None).contains("--tls-key"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("braid.toml");
        std::fs::write(&path, "grpc_listn = \"127.0.0.1:9000\"\n").unwrap();
        let mut a = args();
        a.config = Some(path);
        let e = ServerConfig::resolve(&a).unwrap_err().to_string();
        assert!(e.contains("grpc_listn"), "{e}");
    }
}
