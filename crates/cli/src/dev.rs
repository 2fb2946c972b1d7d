//! `openkcm dev`: Core and Edge in one process, a development PKI, the `file` seal and `local` L1 keys, all
//! under one data directory and bound to loopback.

use anyhow::{bail, Context};
use openkcm_core::seal::{CoreOpener, FileSeal, Node, ProviderSeal, SealMode};
use openkcm_core::{Core, CoreConfig, CoreKmipService, OperatorApi};
use openkcm_edge::{CoreLink, Edge, EdgeKmipService};
use openkcm_net::{pki::DevPki, tls, KmipPool, ServerLimits};
use openkcm_store::{KeyStore, MemoryStore, SqliteStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Edge vault backends available in dev.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum VaultKind {
    /// SQLite file `<data-dir>/edge-vault.db` (keys survive restarts).
    Sqlite,
    /// In memory (keys are lost at exit).
    Memory,
}

/// L3 custody (DESIGN §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Custody {
    /// Service keys never leave the Core; the edge asks the Core to wrap and unwrap each L4.
    Core,
    /// The Core leases each service key to the edge for --l3-lease-ttl; the edge wraps and unwraps itself.
    Lease,
}

/// Arguments of `openkcm dev`.
#[derive(clap::Args)]
pub struct DevArgs {
    /// Directory for the PKI, sealed MasterKey, L1 key files and databases.
    #[arg(long, env = "OPENKCM_DATA_DIR", default_value = "./openkcm-data")]
    data_dir: PathBuf,
    /// Tenant to provision (repeatable): system `<NAME>-system`, service `default`, and a client certificate.
    #[arg(
        long = "tenant",
        env = "OPENKCM_TENANTS",
        value_delimiter = ',',
        default_value = "demo"
    )]
    tenants: Vec<String>,
    /// Edge KMIP listener (applications connect here). Port 0 picks a free port.
    #[arg(long, env = "OPENKCM_EDGE_ADDR", default_value = "127.0.0.1:5696")]
    edge_addr: String,
    /// Core KMIP listener (edges connect here). Port 0 picks a free port.
    #[arg(long, env = "OPENKCM_CORE_ADDR", default_value = "127.0.0.1:5697")]
    core_addr: String,
    /// Create a service (its L3) on first use when a client certificate of a provisioned tenant names a service
    /// that does not exist yet (development convenience; services are otherwise created at start, `default`).
    #[arg(long, env = "OPENKCM_AUTO_PROVISION_SERVICES")]
    auto_provision_services: bool,
    /// Allow Encrypt and Decrypt with legacy algorithms (Triple DES). Off by default: such keys can be created,
    /// registered and fetched, but cryptographic operations with them are refused by policy.
    #[arg(long, env = "OPENKCM_LEGACY_CRYPTO")]
    legacy_crypto: bool,
    /// A JSON file of accepted KMIP request credentials (Username and Password, Device), each with a salted
    /// PBKDF2 hash; see docs/conformance.md. Without it, credentials in requests are not checked and give no rights.
    #[arg(long, env = "OPENKCM_KMIP_CREDENTIALS")]
    kmip_credentials: Option<PathBuf>,
    /// Where the Core keeps its wrapped keys: SQLite in `<data-dir>/core.db` (default), a PostgreSQL database,
    /// `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE` (one database per cluster; the tables are created on first
    /// use), or an OpenBao/Vault KV version 2 engine, `openbao+http(s)://HOST:PORT/MOUNT` (token in
    /// OPENKCM_CORE_STORE_TOKEN; --core-store-ca for https).
    #[arg(long, env = "OPENKCM_CORE_STORE")]
    core_store: Option<String>,
    /// IVK rotation period in days (DESIGN §4; default 30): the ACTIVE IVK version is replaced when it is older.
    #[arg(long, env = "OPENKCM_IVK_ROTATION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
    ivk_rotation_days: u64,
    /// Service key (L3) rotation period in days (DESIGN §5.1; default 30): a service whose current L3 is older
    /// gets a new version.
    #[arg(long, env = "OPENKCM_L3_ROTATE_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
    l3_rotate_days: u64,
    /// System key (L2) rotation period in days (DESIGN §5.1; default 365).
    #[arg(long, env = "OPENKCM_L2_ROTATE_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=36500))]
    l2_rotate_days: u64,
    /// Active bindings the background scrubber re-wraps per minute under the ACTIVE IVK (0: off).
    #[arg(long, env = "OPENKCM_SCRUB_PER_MINUTE", default_value_t = 600)]
    scrub_per_minute: usize,
    /// Days after which the scrubber re-wraps a binding still under an older IVK version (DESIGN §4 `scrub_age`;
    /// default 90; 0: as soon as the IVK rotates). Younger bindings move when they are next used.
    #[arg(long, env = "OPENKCM_SCRUB_AGE_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(0..=3650))]
    scrub_age_days: u64,
    /// The CA certificate of an https OpenBao core store.
    #[arg(long, env = "OPENKCM_CORE_STORE_CA")]
    core_store_ca: Option<PathBuf>,
    /// Edge vault backend.
    #[arg(long, env = "OPENKCM_EDGE_VAULT", value_enum, default_value = "sqlite")]
    edge_vault: VaultKind,
    /// Connections in the edge's pool to the Core.
    #[arg(long, default_value_t = 4)]
    core_connections: usize,
    /// Seconds the edge keeps an unwrapped L4 key in memory, so hot keys cost no Core round trip; 0 turns the
    /// cache off (every use unwraps through the Core). A change to a key (Revoke, Destroy …) drops it at once; a
    /// service key destroyed or marked compromised at the Core stops its cached keys within this time (at most 300).
    #[arg(long, env = "OPENKCM_L4_CACHE_TTL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=300))]
    l4_cache_ttl: u64,
    /// L3 custody: `core` (service keys stay in the Core) or `lease` (the Core leases them to the edge).
    #[arg(long, env = "OPENKCM_L3_CUSTODY", value_enum, default_value = "core")]
    l3_custody: Custody,
    /// Seconds an edge may hold a leased service key in `lease` custody (1 to 300).
    #[arg(long, env = "OPENKCM_L3_LEASE_TTL", default_value_t = 300)]
    l3_lease_ttl: u64,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `openkcm_edge=debug`.
    #[arg(long, env = "OPENKCM_LOG", default_value = "info")]
    log: String,
    /// Seconds a KMIP connection may stay idle before the server closes it (both listeners).
    #[arg(long, env = "OPENKCM_IDLE_TIMEOUT", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Seconds a client has, once its connection is accepted, to complete the TLS handshake (both listeners).
    #[arg(long, env = "OPENKCM_HANDSHAKE_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    handshake_timeout: u64,
    /// Seconds a client has to send the rest of a message once it started one; a message trickling in more slowly
    /// closes the connection (both listeners).
    #[arg(long, env = "OPENKCM_READ_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    read_timeout: u64,
    /// Largest KMIP request accepted from applications, in bytes. A larger one is refused with Invalid Message from
    /// its length field, before it is read. (The Core listener, which only the edge uses, keeps at least 1 MiB.)
    #[arg(long, env = "OPENKCM_MAX_MESSAGE_BYTES", default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=1 << 30))]
    max_message_bytes: u64,
    /// Connections each listener serves at once; further clients wait until a connection closes (stalled ones are
    /// closed by the handshake, read and idle timeouts).
    #[arg(long, env = "OPENKCM_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    max_connections: u64,
    /// Connections one client identity (certificate) may hold on each listener; one more is answered with
    /// Permission Denied and closed. Must be at least --core-connections (the edge's pool to the Core).
    #[arg(long, env = "OPENKCM_MAX_CONNECTIONS_PER_IDENTITY", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    max_connections_per_identity: u64,
    /// Refuse to start when secret memory cannot be locked (`mlock` fails: raise `ulimit -l` or grant
    /// CAP_IPC_LOCK). Without it the node starts with a warning and secrets may be swapped to disk (DESIGN §3.1).
    #[arg(long, env = "OPENKCM_REQUIRE_MLOCK")]
    require_mlock: bool,
    /// How the MasterKey is sealed: `file` (development: the seal key is a file in the data directory, the node
    /// unseals itself), `shamir` (M-of-N key ceremony; the node starts sealed until M share holders unseal it), or
    /// auto-unseal through a key service: `vault-transit`, `aws-kms`, `pkcs11`, `kmip`, `gcp-kms`,
    /// `azure-keyvault` (each with its own flags below; docs/operations.md has a table).
    #[arg(long, env = "OPENKCM_SEAL", value_enum, default_value = "file")]
    seal: SealKind,
    /// Shamir: N, the number of shares the ceremony on first start makes (one per --recipient).
    #[arg(long, env = "OPENKCM_SHARES")]
    shares: Option<usize>,
    /// Shamir: M, the number of shares that unseal the node.
    #[arg(long, env = "OPENKCM_THRESHOLD")]
    threshold: Option<usize>,
    /// The public key of a share holder (age `age1…`, `ssh-ed25519 …` or `ssh-rsa …`), one per share, in share
    /// order, or a path to a file holding one: the Shamir shares (--seal shamir) or the recovery shares of an
    /// auto-unseal seal (--recovery-shares).
    #[arg(long = "recipient")]
    recipients: Vec<String>,
    /// A file of recipients (as --recipient), one public key per line (`#` comments and blank lines are skipped).
    #[arg(long)]
    recipients_file: Option<PathBuf>,
    /// Operator API listener (HTTPS with mTLS: seal-status, init, unseal, seal, recover, migrate-seal). Port 0
    /// picks a free port.
    #[arg(long, env = "OPENKCM_OPERATOR_ADDR", default_value = "127.0.0.1:5698")]
    operator_addr: String,
    /// Plain-HTTP listener for `/metrics` (Prometheus text) and `/healthz` (200 while keys are served, 503 while
    /// sealed); loopback only, as every listener of `openkcm dev`. Port 0 picks a free port.
    #[arg(long, env = "OPENKCM_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    metrics_addr: String,
    /// Region of this cluster (bound into the ceremony manifest and the sealed MasterKey).
    #[arg(long, env = "OPENKCM_REGION", default_value = "dev")]
    region: String,
    /// Auto-unseal: recovery shares to make at first start (one per --recipient): M of them rebuild the
    /// MasterKey if the seal provider's key is ever lost (`openkcm operator recover`).
    #[arg(long, env = "OPENKCM_RECOVERY_SHARES")]
    recovery_shares: Option<usize>,
    /// Auto-unseal: how many recovery shares rebuild the MasterKey.
    #[arg(long, env = "OPENKCM_RECOVERY_THRESHOLD")]
    recovery_threshold: Option<usize>,
    #[command(flatten)]
    provider: crate::seal_args::SealProviderArgs,
    /// A KMIP endpoint of a client to which the edge sends Put (new objects, with their key material) and Notify
    /// (changed attributes) for the objects of TENANT, or of one of its services: TENANT[/SERVICE]=HOST:PORT
    /// (repeatable). The endpoint's certificate must come from this node's CA and name HOST; the edge presents its
    /// edge certificate. Sensitive and non-extractable keys are never sent.
    #[arg(
        long = "notify-endpoint",
        env = "OPENKCM_NOTIFY_ENDPOINTS",
        value_delimiter = ','
    )]
    notify_endpoints: Vec<String>,
    /// A PKCS#11 module a seal migration (`openkcm operator migrate-seal --to pkcs11`) may name (repeatable). The
    /// node's own --pkcs11-module is always allowed; no other library is ever loaded on an operator's request.
    #[arg(
        long = "pkcs11-allowed-module",
        env = "OPENKCM_PKCS11_ALLOWED_MODULES",
        value_delimiter = ','
    )]
    pkcs11_allowed_modules: Vec<PathBuf>,
}

/// Seal modes of `openkcm dev`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SealKind {
    /// Development seal key in `<data-dir>/seal/` (zero-touch start).
    File,
    /// M-of-N Shamir shares encrypted to their holders.
    Shamir,
    /// Auto-unseal through a key in a Vault or OpenBao transit engine (--vault-addr, --seal-key).
    VaultTransit,
    /// Auto-unseal through an AWS KMS key (--aws-region, --seal-key, --aws-endpoint).
    AwsKms,
    /// Auto-unseal through an AES key in an HSM (--pkcs11-module, --pkcs11-token, --seal-key is the key label).
    Pkcs11,
    /// Auto-unseal through Google Cloud KMS (REST; untested against Google).
    GcpKms,
    /// Auto-unseal through Azure Key Vault (REST; untested against Azure).
    AzureKeyvault,
    /// Auto-unseal through a key on a KMIP server (--kmip-addr …, --seal-key is its unique identifier).
    Kmip,
}

impl SealKind {
    /// The provider of an auto-unseal kind.
    fn provider(self) -> Option<crate::seal_args::ProviderKind> {
        match self {
            SealKind::VaultTransit => Some(crate::seal_args::ProviderKind::VaultTransit),
            SealKind::AwsKms => Some(crate::seal_args::ProviderKind::AwsKms),
            SealKind::Pkcs11 => Some(crate::seal_args::ProviderKind::Pkcs11),
            SealKind::GcpKms => Some(crate::seal_args::ProviderKind::GcpKms),
            SealKind::AzureKeyvault => Some(crate::seal_args::ProviderKind::AzureKeyvault),
            SealKind::Kmip => Some(crate::seal_args::ProviderKind::Kmip),
            SealKind::File | SealKind::Shamir => None,
        }
    }
}

/// The limits of both KMIP listeners, from the flags.
fn server_limits(args: &DevArgs) -> anyhow::Result<ServerLimits> {
    use std::time::Duration;
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let limits = ServerLimits {
        ttlv: openkcm_ttlv::Limits {
            max_message_bytes: count(args.max_message_bytes),
            ..openkcm_ttlv::Limits::default()
        },
        handshake_timeout: Duration::from_secs(args.handshake_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        read_timeout: Duration::from_secs(args.read_timeout),
        max_connections: count(args.max_connections),
        max_connections_per_identity: count(args.max_connections_per_identity),
        ..ServerLimits::default()
    };
    if !(1..=300).contains(&args.l3_lease_ttl) {
        anyhow::bail!(
            "--l3-lease-ttl must be 1 to 300 seconds (a leased service key is held at most 5 minutes), not {}",
            args.l3_lease_ttl
        );
    }
    if args.l3_custody == Custody::Lease {
        tracing::warn!(
            lease_s = args.l3_lease_ttl,
            "L3 custody is lease: the Core hands service keys to the edge, which wraps and unwraps L4s itself"
        );
    }
    if args.core_connections == 0 {
        bail!("--core-connections must be at least 1: the edge reaches the Core through them");
    }
    // The edge holds a pool of connections to the Core under one identity: the Core must let all of them in.
    if args.core_connections > limits.max_connections_per_identity
        || args.core_connections > limits.max_connections
    {
        bail!(
            "--core-connections {} is more than --max-connections-per-identity {} or --max-connections {}: the edge's pool to the Core would be refused; lower --core-connections or raise the limits",
            args.core_connections,
            limits.max_connections_per_identity,
            limits.max_connections
        );
    }
    Ok(limits)
}

/// The Core listener's limits: those of the flags, except that the message size never drops below the default
/// (1 MiB). The Core only hears the edge, whose messages (an object of at most 64 KiB to wrap, its envelope) the
/// operator's --max-message-bytes for applications must not cut.
fn core_limits(mut limits: ServerLimits) -> ServerLimits {
    let floor = openkcm_ttlv::Limits::default().max_message_bytes;
    limits.ttlv.max_message_bytes = limits.ttlv.max_message_bytes.max(floor);
    limits
}

/// The listener address, which must be loopback (`localhost:PORT` means 127.0.0.1).
/// Whether the database file at `path` is absent or empty (0 bytes). Such a file is refused before SQLite opens it:
/// opening would write a new database and a -wal file, which a backup copied back over it would then be read with.
fn missing_or_empty(path: &Path) -> bool {
    std::fs::metadata(path).map_or(true, |m| m.len() == 0)
}

fn loopback_only(addr: &str) -> anyhow::Result<String> {
    let addr = match addr.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => addr.to_owned(),
    };
    let sock: std::net::SocketAddr = addr.parse().with_context(|| {
        format!("{addr:?} is not an IP:port address (e.g. 127.0.0.1:5696 or localhost:5696)")
    })?;
    if !sock.ip().is_loopback() {
        bail!("openkcm dev binds to loopback only; {addr} is not a loopback address");
    }
    Ok(addr)
}

/// Warns about secret files that others than the owner may read (the directory is 0700, but files copied or
/// restored elsewhere keep their own modes).
fn warn_loose_permissions(data: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut secrets = vec![data.join("seal/file-seal.key")];
    for dir in [data.join("pki"), data.join("l1")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            secrets.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "key")),
            );
        }
    }
    for path in secrets {
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %path.display(), "secret file is readable by other users; chmod 600 it");
            }
        }
    }
}

/// Makes the data directory private to this user and takes an exclusive lock on it, so that two processes never
/// serve (and write) the same keys. The lock lives as long as the returned file.
fn prepare_data_dir(data: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data directory {}", data.display()))?;
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict the permissions of {}", data.display()))?;
    let lock_path = data.join("openkcm.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another openkcm process is using the data directory {}; stop it first or choose another --data-dir",
            data.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
        }
    }
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    tls::install_default_provider();
    if let Err(e) = openkcm_crypto::harden_process() {
        tracing::warn!(error = %e, "process hardening incomplete");
    }
    // Probe: lock one page of secret memory before any real secret exists.
    drop(openkcm_crypto::SecretKey::generate().context("generating a probe key")?);
    if !openkcm_crypto::mlock_available() {
        if args.require_mlock {
            bail!(
                "secret memory cannot be locked (mlock failed) and --require-mlock is set: raise the memlock limit \
                 (`ulimit -l`) or grant the process CAP_IPC_LOCK"
            );
        }
        tracing::warn!(
            "mlock failed: secret keys may be swapped to disk; raise `ulimit -l` or grant CAP_IPC_LOCK, or pass \
             --require-mlock to refuse to start like this"
        );
    }
    let edge_addr_arg = loopback_only(&args.edge_addr)?;
    let core_addr_arg = loopback_only(&args.core_addr)?;
    let metrics_addr_arg = loopback_only(&args.metrics_addr)?;
    let limits = server_limits(&args)?;
    for t in &args.tenants {
        if !openkcm_net::identity::valid_name(t) {
            bail!("tenant name {t:?} is invalid: use 1-63 characters of a-z, 0-9 and -, not starting with -");
        }
    }
    check_seal_flags(&args)?;
    let data = &args.data_dir;
    let _lock = prepare_data_dir(data)?;

    // PKI.
    let pki = DevPki::open_or_create(&data.join("pki")).context("development PKI")?;
    let server_files = pki.server()?;
    let edge_files = pki.edge("dev-edge")?;
    let mut clients = Vec::new();
    for t in &args.tenants {
        clients.push((t.clone(), pki.client(t, "default")?));
    }

    // Root of trust and Core: the Core storage and L1 provider open now; the Core itself opens once the
    // MasterKey is back (at once with the file seal, after M holders' shares with Shamir).
    let (core_store, core_sqlite, core_postgres): (
        Arc<dyn KeyStore>,
        Option<Arc<SqliteStore>>,
        Option<openkcm_store::PostgresStore>,
    ) = match args.core_store.as_deref() {
        None | Some("sqlite") => {
            // A missing database of an initialised cluster is refused before SQLite would create an empty one (and
            // a -wal file that a restored copy would then be read with).
            let path = data.join("core.db");
            if missing_or_empty(&path) && openkcm_core::seal::is_initialised(&data.join("seal")) {
                bail!(
                    "{} is missing or empty, although this cluster's Core storage was initialised (seal/cluster.initialised): \
                     restore it from a backup (with its -wal file if the backup has one), or start over with a new \
                     data directory; a new, empty database would open none of the keys",
                    path.display()
                );
            }
            let s = Arc::new(
                SqliteStore::open(&path)
                    .await
                    .context("core key storage")?,
            );
            (s.clone(), Some(s), None)
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let p = openkcm_store::PostgresStore::open(url)
                .await
                .context("core key storage (PostgreSQL)")?;
            tracing::info!("the Core keeps its keys in PostgreSQL");
            (Arc::new(p.clone()), None, Some(p))
        }
        Some(url) if url.starts_with("openbao+") => {
            let rest = url.trim_start_matches("openbao+");
            let scheme_end = rest.find("://").map_or(0, |i| i + 3);
            let (server, mount) = match rest[scheme_end..].split_once('/') {
                Some((host, mount)) if !mount.is_empty() => {
                    (format!("{}{host}", &rest[..scheme_end]), mount.to_owned())
                }
                _ => bail!("--core-store openbao+http(s)://HOST:PORT/MOUNT needs the KV engine's mount (for example /secret)"),
            };
            let target = openkcm_providers::http_target(&server, args.core_store_ca.as_deref())
                .map_err(|e| anyhow::anyhow!("--core-store: {e}"))?;
            let token = std::env::var("OPENKCM_CORE_STORE_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty())
                .context("an OpenBao core store needs its token in OPENKCM_CORE_STORE_TOKEN")?;
            let store = openkcm_store::OpenBaoStore::open(target, zeroize::Zeroizing::new(token), &mount)
                .await
                .context("core key storage (OpenBao)")?;
            tracing::info!(mount, "the Core keeps its keys in OpenBao");
            (Arc::new(store), None, None)
        }
        Some(_) => bail!(
            "--core-store takes `sqlite` (the default, core.db in the data directory), a postgres://USER@HOST:PORT/DATABASE URL or openbao+http(s)://HOST:PORT/MOUNT"
        ),
    };
    tracing::warn!(
        "customer L1 keys use the `local` provider (key files in {}): DEVELOPMENT ONLY",
        data.join("l1").display()
    );
    let opener = Arc::new(DevOpener {
        store: core_store.clone(),
        l1: Arc::new(openkcm_providers::local::LocalProvider::new(
            data.join("l1"),
        )),
        config: CoreConfig {
            auto_provision_services: args.auto_provision_services,
            l3_lease_ttl: (args.l3_custody == Custody::Lease)
                .then(|| std::time::Duration::from_secs(args.l3_lease_ttl)),
            ..CoreConfig::default()
        },
        tenants: args.tenants.clone(),
    });
    let seal_dir = data.join("seal");
    let mode = match args.seal {
        SealKind::File => {
            tracing::warn!("the MasterKey is sealed with the `file` seal provider: DEVELOPMENT ONLY, anyone who can read {} can unseal it", seal_dir.display());
            SealMode::Auto(Arc::new(FileSeal::new(&seal_dir)))
        }
        SealKind::Shamir => SealMode::Shamir,
        SealKind::VaultTransit
        | SealKind::AwsKms
        | SealKind::Pkcs11
        | SealKind::GcpKms
        | SealKind::AzureKeyvault
        | SealKind::Kmip => {
            let kind = args.seal.provider().context("an auto-unseal provider")?;
            let config = args.provider.config(kind)?;
            let provider = config.build().map_err(|e| anyhow::anyhow!("{e}"))?;
            let key = openkcm_providers::KeyRef {
                provider: provider.name().to_owned(),
                key_id: args.provider.seal_key(kind)?,
                region: config.region(),
            };
            SealMode::Auto(Arc::new(ProviderSeal::new(provider, key, &seal_dir)))
        }
    };
    let node =
        Arc::new(Node::new(&seal_dir, mode, &args.region, opener).context("the node's seal")?);
    let operator_files = pki.operator("admin")?;
    let mut retry_unseal = args.seal.provider().is_some();
    match args.seal {
        SealKind::File => {
            node.auto_unseal()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("unsealing the MasterKey")?;
        }
        SealKind::Shamir => first_ceremony(&args, &node).await?,
        // A seal provider may be down at boot: then the node starts sealed and retries (below) until it answers.
        SealKind::VaultTransit
        | SealKind::AwsKms
        | SealKind::Pkcs11
        | SealKind::GcpKms
        | SealKind::AzureKeyvault
        | SealKind::Kmip => {
            if let Err(e) = node.auto_unseal().await {
                if retry_helps(&e) {
                    tracing::error!(error = %e, "auto-unseal failed; the node starts sealed and retries with backoff");
                } else {
                    tracing::error!(error = %e, "auto-unseal failed and retrying cannot help; the node starts sealed: fix the cause and restart it (or `openkcm operator unseal` to try again)");
                    retry_unseal = false;
                }
            }
            recovery_shares(&args, &node).await?;
        }
    }
    warn_loose_permissions(data);

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let acceptor = TlsAcceptor::from(tls::server_config(&server_files)?);

    let core_listener = TcpListener::bind(&core_addr_arg)
        .await
        .with_context(|| format!("cannot listen on {}", core_addr_arg))?;
    let core_addr = core_listener.local_addr()?;
    let core_task = tokio::spawn(openkcm_net::serve(
        core_listener,
        acceptor.clone(),
        Arc::new(CoreKmipService::new(node.clone())),
        core_limits(limits),
        shutdown_rx.clone(),
    ));

    // Edge.
    let vault_sqlite = match args.edge_vault {
        VaultKind::Sqlite => Some(Arc::new({
            // As for core.db: refused before SQLite creates an empty database in its place.
            let path = data.join("edge-vault.db");
            let marker = data.join("edge-vault.initialised");
            if missing_or_empty(&path) && marker.exists() {
                return Err(openkcm_edge::ClaimError::Replaced {
                    vault: path.display().to_string(),
                    marker,
                }
                .into());
            }
            SqliteStore::open(&path).await.context("edge vault")?
        })),
        VaultKind::Memory => None,
    };
    let vault: Arc<dyn KeyStore> = match &vault_sqlite {
        Some(v) => {
            let vault_path = data.join("edge-vault.db").display().to_string();
            openkcm_edge::claim_vault(
                v.as_ref(),
                &vault_path,
                &data.join("edge-vault.initialised"),
            )
            .await?;
            v.clone()
        }
        None => {
            tracing::warn!(
                "the edge vault is in memory: data keys are lost when this process stops"
            );
            if data.join("edge-vault.db").exists() {
                tracing::warn!(
                    "{} exists but --edge-vault memory does not use it",
                    data.join("edge-vault.db").display()
                );
            }
            Arc::new(MemoryStore::new())
        }
    };
    let pool = KmipPool::new(
        &core_addr.to_string(),
        "localhost",
        tls::client_config(&edge_files)?,
        args.core_connections,
    );
    let mut edge = Edge::new(
        vault,
        CoreLink::new(pool).with_l3_lease(args.l3_custody == Custody::Lease),
    )
    .with_legacy_crypto(args.legacy_crypto)
    .with_l4_cache(
        std::time::Duration::from_secs(args.l4_cache_ttl),
        openkcm_edge::l4_cache::DEFAULT_CAPACITY,
    );
    if vault_sqlite.is_some() {
        edge = edge.with_sealed_vault();
    }
    if !args.notify_endpoints.is_empty() {
        let endpoints = args
            .notify_endpoints
            .iter()
            .map(|e| {
                openkcm_edge::notify::NotifyEndpoint::parse(e)
                    .map_err(|m| anyhow::anyhow!("--notify-endpoint {m}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for e in &endpoints {
            tracing::warn!(tenant = %e.tenant, service = ?e.service, endpoint = %e.addr, "new objects of this tenant are sent to its notify endpoint, with their key material (Put)");
        }
        edge = edge.with_notifier(openkcm_edge::notify::Notifier::start(
            endpoints,
            tls::client_config(&edge_files)?,
        ));
    }
    if let Some(path) = &args.kmip_credentials {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the KMIP credentials file {}", path.display()))?;
        let file: openkcm_edge::credentials::CredentialsFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a KMIP credentials file", path.display()))?;
        let n = file.credentials.len();
        let creds = openkcm_edge::credentials::KmipCredentials::new(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        tracing::info!(credentials = n, "KMIP request credentials are checked");
        edge = edge.with_credentials(creds);
    }
    let edge = Arc::new(edge);
    // Sealing the Core also takes the edge's plaintext data keys and leased service keys, before the seal returns.
    let edge_on_seal = edge.clone();
    node.on_seal(Box::new(move || edge_on_seal.set_core_sealed(true)));
    edge.set_core_sealed(node.is_sealed());
    if args.legacy_crypto {
        tracing::warn!("legacy_crypto is on: Encrypt and Decrypt accept Triple DES keys; use it only to read old data");
    }
    let edge_listener = TcpListener::bind(&edge_addr_arg)
        .await
        .with_context(|| format!("cannot listen on {}", edge_addr_arg))?;
    let edge_addr = edge_listener.local_addr()?;
    let edge_task = tokio::spawn(openkcm_net::serve(
        edge_listener,
        acceptor.clone(),
        Arc::new(EdgeKmipService::new(edge.clone())),
        limits,
        shutdown_rx.clone(),
    ));

    let operator_addr_arg = loopback_only(&args.operator_addr)?;
    let operator_listener = TcpListener::bind(&operator_addr_arg)
        .await
        .with_context(|| format!("cannot listen on {}", operator_addr_arg))?;
    let operator_addr = operator_listener.local_addr()?;
    let operator_task = tokio::spawn(openkcm_net::https::serve_https(
        operator_listener,
        acceptor,
        Arc::new(
            OperatorApi::new(node.clone()).with_pkcs11_modules(
                args.pkcs11_allowed_modules
                    .iter()
                    .cloned()
                    .chain(args.provider.pkcs11_module.clone())
                    .collect(),
            ),
        ),
        core_limits(limits),
        shutdown_rx.clone(),
    ));
    let metrics_listener = TcpListener::bind(&metrics_addr_arg)
        .await
        .with_context(|| format!("cannot listen on {metrics_addr_arg} (--metrics-addr)"))?;
    let metrics_addr = metrics_listener.local_addr()?;
    let metrics = crate::metrics::DevMetrics::new(node.clone());
    tokio::spawn(openkcm_net::metrics_http::serve_metrics(
        metrics_listener,
        metrics.clone(),
        shutdown_rx,
    ));
    openkcm_core::seal::write_private(
        &data.join(OPERATOR_ADDR_FILE),
        operator_addr.to_string().as_bytes(),
    )
    .context("recording the operator API address")?;

    for (t, files) in &clients {
        eprintln!(
            "client certificate for tenant {t}: --cert {} --key {}",
            files.cert.display(),
            files.key.display()
        );
    }
    eprintln!(
        "operator certificate: --cert {} --key {} (or `openkcm operator … --data-dir {}`)",
        operator_files.cert.display(),
        operator_files.key.display(),
        data.display()
    );
    // Signal handlers exist before READY is printed: a supervisor may send SIGTERM right after reading it.
    let signals = Signals::install()?;
    let addresses = format!(
        "edge={edge_addr} core={core_addr} operator={operator_addr} metrics={metrics_addr} ca={}",
        pki.ca_path().display()
    );
    // One line per seal-state change: OPENKCM SEALED while the node waits for its unseal, OPENKCM READY once the
    // Core serves keys.
    let mut seal_events = node.subscribe();
    // Changes before the subscription are not signalled: take the state now, later ones arrive as events.
    edge.set_core_sealed(node.is_sealed());
    let announce = |sealed: bool| {
        let ceremony_held = data
            .join("seal")
            .join(openkcm_core::seal::node::MANIFEST_FILE)
            .exists();
        if sealed && args.seal == SealKind::Shamir && !ceremony_held {
            println!(
                "OPENKCM SEALED {addresses} not initialised: hold the key ceremony with openkcm operator init --data-dir {} --threshold M --recipient …",
                data.display()
            );
        } else if sealed {
            println!(
                "OPENKCM SEALED {addresses} unseal: openkcm operator unseal --data-dir {}",
                data.display()
            );
        } else {
            println!("OPENKCM READY {addresses}");
        }
    };
    let mut announced = node.is_sealed();
    if !announced {
        // A vault sealed under another key (another cluster's, another edge's) stops the start here.
        if let Err(e @ openkcm_store::StoreError::Corrupt { .. }) = edge.open_vault().await {
            bail!("the edge vault cannot be used: {e}");
        }
    }
    announce(announced);
    if retry_unseal && node.is_sealed() {
        tokio::spawn(auto_unseal_with_backoff(node.clone()));
    }
    tokio::spawn(ivk_upkeep(
        node.clone(),
        std::time::Duration::from_secs(args.ivk_rotation_days * 24 * 3600),
        std::time::Duration::from_secs(args.l3_rotate_days * 24 * 3600),
        std::time::Duration::from_secs(args.l2_rotate_days * 24 * 3600),
        args.scrub_per_minute,
        std::time::Duration::from_secs(args.scrub_age_days * 24 * 3600),
        metrics,
    ));
    let stop = signals.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = &mut stop => { r?; break; }
            changed = seal_events.changed() => {
                if changed.is_err() { break; }
                let sealed = *seal_events.borrow_and_update();
                edge.set_core_sealed(sealed);
                if sealed != announced {
                    announced = sealed;
                    announce(sealed);
                    // Recovery shares asked for at a start when the provider was down are made at the first unseal.
                    if !sealed && args.seal.provider().is_some() {
                        if let Err(e) = recovery_shares(&args, &node).await {
                            tracing::error!(error = %format!("{e:#}"), "the recovery shares were not made");
                        }
                    }
                }
            }
        }
    }
    tracing::info!("shutting down: sealing (zeroizing every key) and closing listeners");
    node.seal().await;
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let _ = core_task.await;
        let _ = edge_task.await;
        let _ = operator_task.await;
    })
    .await;
    // Counts of log lines left out under the per-second limits, not yet written.
    openkcm_net::log_limit::flush();
    let (hits, misses) = edge.l4_cache_stats();
    tracing::info!(
        hits,
        misses,
        ttl_s = args.l4_cache_ttl,
        "edge L4 cache: keys served from the cache, and unwrapped through the Core"
    );
    // Closing the pools checkpoints the write-ahead logs into the database files.
    if let Some(v) = vault_sqlite {
        v.close().await;
    }
    if let Some(s) = core_sqlite {
        s.close().await;
    }
    if let Some(p) = core_postgres {
        p.close().await;
    }
    Ok(())
}

/// SIGTERM, SIGHUP and Ctrl-C handlers, installed before the process announces it is ready.
struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn wait(mut self) -> anyhow::Result<()> {
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
        Ok(())
    }
}

/// File in the data directory naming the operator API's address (for `openkcm operator --data-dir`).
pub const OPERATOR_ADDR_FILE: &str = "operator.addr";

/// Opens the dev Core once the MasterKey is back: its storage, the `local` L1 provider, and the tenants of the
/// command line (provisioned on every unseal; provisioning is idempotent).
struct DevOpener {
    store: Arc<dyn KeyStore>,
    l1: Arc<openkcm_providers::local::LocalProvider>,
    config: CoreConfig,
    tenants: Vec<String>,
}

#[async_trait::async_trait]
impl CoreOpener for DevOpener {
    async fn open(
        &self,
        mk: &openkcm_crypto::SecretKey,
        first_start: bool,
    ) -> Result<Arc<Core>, String> {
        let store: Arc<dyn KeyStore> = self.store.clone();
        let config = CoreConfig {
            allow_new_ivk: first_start,
            ..self.config.clone()
        };
        let core = Arc::new(
            Core::open(store, mk, self.l1.clone(), config)
                .await
                .map_err(|e| format!("opening the Crypto Core: {e}"))?,
        );
        for t in &self.tenants {
            core.provision(t, &format!("{t}-system"), "default")
                .await
                .map_err(|e| format!("provisioning tenant {t}: {e}"))?;
        }
        for t in &self.tenants {
            let system = format!("{t}-system");
            match core.l1_status(t, &system).await {
                Ok(d) if d.enabled => {}
                Ok(_) => {
                    tracing::warn!(tenant = %t, system, "the customer's L1 key is disabled: this system's keys stop being served once the sovereign TTL has passed since L1 was last proven")
                }
                Err(e) => {
                    tracing::warn!(tenant = %t, system, error = %e, "the customer's L1 key cannot be used: this system's keys stop being served once the sovereign TTL has passed since L1 was last proven")
                }
            }
        }
        Ok(core)
    }

    async fn storage_holds_keys(&self) -> bool {
        // Any record (names are sealed: only their presence is visible without the MasterKey), or a storage error,
        // counts as keys being there: never a new MasterKey on a doubt.
        !matches!(self.store.list_tenants().await, Ok(t) if t.is_empty())
    }
}

/// Shamir mode at start: on a node that was never initialised, with recipients given, holds the key ceremony and
/// writes the encrypted shares and the manifest under `<data-dir>/ceremony/`.
async fn first_ceremony(args: &DevArgs, node: &Node) -> anyhow::Result<()> {
    let recipients = crate::operator_cli::recipients(&args.recipients, &args.recipients_file)?;
    let status = node.status().await;
    if status.initialized {
        if !recipients.is_empty() {
            tracing::info!(
                "the cluster is already initialised: --recipient, --shares and --threshold are not used again"
            );
        }
        return Ok(());
    }
    if recipients.is_empty() {
        tracing::warn!("the cluster is not initialised: hold the key ceremony with `openkcm operator init` (or restart with --recipient … for each share holder)");
        return Ok(());
    }
    let shares = args.shares.unwrap_or(recipients.len());
    let threshold = args.threshold.context(
        "--threshold is required for the key ceremony (how many shares unseal the node)",
    )?;
    let (manifest, files) = node
        .init(shares, threshold, recipients)
        .await
        .map_err(|e| anyhow::anyhow!("the key ceremony failed: {e}"))?;
    let dir = args.data_dir.join("ceremony");
    crate::operator_cli::write_ceremony(&dir, &manifest, &files)?;
    tracing::info!(
        shares,
        threshold,
        dir = %dir.display(),
        "key ceremony complete: hand each share-<i>.age to its holder; the node stays sealed until {threshold} of them unseal it"
    );
    Ok(())
}

/// Unseals through the node's automatic seal, retrying with exponential backoff (1 s doubling to 30 s) while the
/// provider fails; seal-status shows `sealed` with the reason meanwhile.
async fn auto_unseal_with_backoff(node: Arc<Node>) {
    let mut delay = std::time::Duration::from_secs(1);
    loop {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(30));
        if !node.is_sealed() {
            // Unsealed meanwhile (by hand, or with recovery shares).
            return;
        }
        match node.auto_unseal().await {
            Ok(_) => return,
            Err(_) if !node.is_sealed() => return,
            Err(e) if retry_helps(&e) => {
                tracing::error!(error = %e, retry_in_s = delay.as_secs(), "auto-unseal failed; the node stays sealed and retries");
            }
            Err(e) => {
                tracing::error!(error = %e, "auto-unseal failed and retrying cannot help; the node stays sealed and stops retrying: fix the cause and restart it (or `openkcm operator unseal` to try again)");
                return;
            }
        }
    }
}

/// Once a minute while the node is unsealed: rotates the IVK when the ACTIVE version is older than `period`, and
/// re-wraps up to `per_minute` bindings still under older versions (progress in the log; resumable, since what was
/// done is in storage).
async fn ivk_upkeep(
    node: Arc<Node>,
    period: std::time::Duration,
    l3_period: std::time::Duration,
    l2_period: std::time::Duration,
    per_minute: usize,
    scrub_age: std::time::Duration,
    metrics: Arc<crate::metrics::DevMetrics>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The scheduled L2/L3 scans and the scrubber read every tenant's records: the scans run hourly, the scrubber
    // only while bindings remain under an older IVK version (at start, and after each rotation until it is done).
    let mut minutes: u64 = 0;
    // (the ACTIVE version the scrubber works for, when it next has work: None once every binding is under it)
    let mut scrub: (Option<u32>, Option<i64>) = (None, Some(0));
    loop {
        tick.tick().await;
        let Some(core) = node.core() else { continue };
        match core.rotate_ivk_if_due(period).await {
            Ok(Some(v)) => tracing::info!(version = v, "scheduled IVK rotation"),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "scheduled IVK rotation failed; retried in a minute")
            }
        }
        let dropped = core.forget_deprecated_ivk();
        if dropped > 0 {
            tracing::info!(
                versions = dropped,
                "DEPRECATED IVK versions dropped from memory"
            );
        }
        if minutes.is_multiple_of(60) {
            match core.rotate_due_l2(l2_period).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(systems = n, "scheduled system key (L2) rotation"),
                Err(e) => {
                    tracing::error!(error = %e, "scheduled L2 rotation failed; retried in an hour")
                }
            }
            match core.rotate_due_l3(l3_period).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(services = n, "scheduled service key (L3) rotation"),
                Err(e) => {
                    tracing::error!(error = %e, "scheduled L3 rotation failed; retried in an hour")
                }
            }
        }
        minutes = minutes.wrapping_add(1);
        let active = core
            .ivk_versions()
            .into_iter()
            .find(|v| v.state == openkcm_core::keyring::IvkState::Active)
            .map(|v| v.version);
        if active != scrub.0 {
            // A new ACTIVE version: bindings under the older ones are to be scrubbed.
            scrub = (active, Some(0));
        }
        let due = scrub
            .1
            .is_some_and(|at| openkcm_core::hierarchy::unix_now() >= at);
        if per_minute == 0 || !due {
            continue;
        }
        match core.scrub_bindings(per_minute, scrub_age).await {
            Ok(pass) => {
                metrics.record_scrub(&pass);
                if pass.rewrapped > 0 || pass.failed > 0 {
                    tracing::info!(
                        rewrapped = pass.rewrapped,
                        remaining = pass.remaining,
                        waiting = pass.waiting,
                        failed = pass.failed,
                        "IVK scrubber: bindings re-wrapped under the ACTIVE version"
                    );
                }
                if pass.finished() {
                    scrub.1 = None;
                } else if pass.remaining == 0 && pass.failed == 0 {
                    // Only bindings younger than the scrub age are left: come back when the first one is due.
                    scrub.1 = pass.next_due;
                }
            }
            Err(e) => tracing::error!(error = %e, "IVK scrubber failed; retried in a minute"),
        }
    }
}

/// Whether an auto-unseal failure can go away by itself: the provider being unreachable, throttling or refusing
/// (a customer may re-enable a key). A blob of another cluster or region, or a corrupt one, does not.
fn retry_helps(e: &openkcm_core::seal::node::NodeError) -> bool {
    matches!(e, openkcm_core::seal::node::NodeError::Unavailable(_))
}

/// Auto-unseal at start: with --recovery-shares, makes the recovery shares once (the node must be unsealed) and
/// writes them under `<data-dir>/ceremony/`.
async fn recovery_shares(args: &DevArgs, node: &Node) -> anyhow::Result<()> {
    let Some(shares) = args.recovery_shares else {
        if node.manifest().await.is_none() && !node.is_sealed() {
            tracing::warn!("this auto-unseal cluster has no recovery shares: if the seal provider's key is lost, so is every key; make them with --recovery-shares/--recovery-threshold/--recipient or `openkcm operator init --mode recovery`");
        }
        return Ok(());
    };
    if node.manifest().await.is_some() {
        return Ok(());
    }
    if node.is_sealed() {
        tracing::warn!("recovery shares are made once the node has unsealed; it is sealed now, so they will be made when it unseals");
        return Ok(());
    }
    let recipients = crate::operator_cli::recipients(&args.recipients, &args.recipients_file)?;
    let threshold = args
        .recovery_threshold
        .context("--recovery-shares needs --recovery-threshold")?;
    let (manifest, files) = node
        .init(shares, threshold, recipients)
        .await
        .map_err(|e| anyhow::anyhow!("making the recovery shares failed: {e}"))?;
    let dir = args.data_dir.join("ceremony");
    crate::operator_cli::write_ceremony_named(&dir, &manifest, &files, "recovery-manifest.json")?;
    tracing::info!(shares, threshold, dir = %dir.display(), "recovery shares made: hand each recovery-share-<i>.age to its holder");
    Ok(())
}

/// Refuses seal flags that the chosen seal would silently ignore.
fn check_seal_flags(args: &DevArgs) -> anyhow::Result<()> {
    let shamir = args.seal == SealKind::Shamir;
    let auto = args.seal.provider().is_some();
    if !shamir && (args.threshold.is_some() || args.shares.is_some()) {
        bail!("--threshold and --shares belong to the Shamir seal: add --seal shamir (for an auto-unseal seal's recovery shares use --recovery-shares and --recovery-threshold)");
    }
    if !auto && (args.recovery_shares.is_some() || args.recovery_threshold.is_some()) {
        bail!("--recovery-shares and --recovery-threshold belong to an auto-unseal seal (--seal vault-transit, aws-kms, pkcs11, kmip, gcp-kms or azure-keyvault)");
    }
    let recipients = !args.recipients.is_empty() || args.recipients_file.is_some();
    if recipients && !shamir && args.recovery_shares.is_none() {
        bail!("--recipient names the holders of Shamir shares (--seal shamir) or of recovery shares (--recovery-shares); with this seal it would be ignored");
    }
    if let Some(n) = args.recovery_shares {
        // Checked before anything is made: a MasterKey sealed without the recovery shares asked for would be an
        // unprotected cluster.
        let m = args
            .recovery_threshold
            .context("--recovery-shares needs --recovery-threshold")?;
        if m < 1 || m > n || n > 255 {
            bail!(
                "--recovery-shares {n} --recovery-threshold {m}: need 1 ≤ threshold ≤ shares ≤ 255"
            );
        }
        let given = crate::operator_cli::recipients(&args.recipients, &args.recipients_file)?.len();
        if given != n {
            bail!("--recovery-shares {n} needs one --recipient per share; {given} given");
        }
    } else if args.recovery_threshold.is_some() {
        bail!("--recovery-threshold needs --recovery-shares");
    }
    if shamir && !recipients && args.threshold.is_some() {
        tracing::warn!("--threshold is used by the key ceremony, which needs the holders' public keys (--recipient); without them the node waits for `openkcm operator init`");
    }
    Ok(())
}
