//! `openkcm operator …`: the operator API's client (seal-status, init, unseal, seal) for people and scripts.
//!
//! Every command finds the node through `--data-dir` (a local `openkcm dev`: its operator address, CA and operator
//! certificate) or explicit `--addr/--ca/--cert/--key`.

use anyhow::{bail, Context};
use openkcm_core::seal::shamir;
use openkcm_net::tls::{self, TlsFiles};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroize;

/// Largest share input (file or standard input): an armored age file of a share is a few hundred bytes.
const MAX_SHARE_INPUT: u64 = 64 << 10;

/// Arguments of `openkcm operator`.
#[derive(clap::Args)]
pub struct OperatorArgs {
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(clap::Subcommand)]
enum OperatorCommand {
    /// Print the node's seal status (JSON).
    SealStatus(Conn),
    /// Hold the Shamir key ceremony on an uninitialised node; writes the encrypted shares and the manifest.
    Init(InitArgs),
    /// Submit one unseal share (decrypting it locally with --identity), or reset the unseal progress.
    Unseal(UnsealArgs),
    /// Seal the node now: every key in memory is zeroized and key operations stop until it is unsealed.
    Seal(Conn),
    /// Auto-unseal nodes whose seal cannot unseal them: submit one recovery share (as `unseal` does).
    Recover(UnsealArgs),
    /// Re-seal the MasterKey of an unsealed node under another provider's key (retiring the previous seal).
    MigrateSeal(Box<MigrateArgs>),
    /// Make a new ACTIVE internal versioned key (IVK); L2 bindings move to it as they are next used.
    RotateIvk(RotateArgs),
    /// Delete an old (DEPRECATED or REVOKED) IVK version; refused while any L2 binding is still wrapped under it.
    DeleteIvk(DeleteIvkArgs),
    /// Load a tenant's keys (L2 of every system, current L3 of every service) into the Core's memory now.
    Prewarm(PrewarmArgs),
    /// Rotate a service's key (L3): a new version wraps new data keys; the previous one still unwraps the old ones.
    RotateL3(RotateL3Args),
    /// Rotate a system's key (L2): a new version, bound to the customer's L1, wraps new service key versions.
    RotateL2(SystemArgs),
    /// Re-wrap every service key of a system under its current L2 version (deep re-key).
    Rewrap(SystemArgs),
    /// Destroy an old L2 version of a system (refused while service keys are still wrapped under it).
    DestroyL2(DestroyL2Args),
    /// Destroy an old version of a service key (L3): every data key wrapped under it becomes unreadable.
    DestroyL3(DestroyL3Args),
    /// Mark a service key (L3) version COMPROMISED: it neither wraps nor unwraps any more (the current version is
    /// rotated first); data keys still under it become unreadable.
    CompromiseL3(DestroyL3Args),
    /// Mark an L2 version of a system COMPROMISED: rotates it if current, re-wraps its service keys under the
    /// current version, then refuses it from then on.
    CompromiseL2(DestroyL2Args),
}

#[derive(clap::Args)]
struct DeleteIvkArgs {
    #[command(flatten)]
    conn: Conn,
    /// The IVK version to delete.
    #[arg(long)]
    version: u32,
}

#[derive(clap::Args)]
struct DestroyL3Args {
    #[command(flatten)]
    conn: Conn,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The service.
    #[arg(long)]
    service: String,
    /// The service key version (destroy-l3: not the current one; compromise-l3: any, the current one is replaced
    /// first).
    #[arg(long)]
    version: u32,
}

#[derive(clap::Args)]
struct SystemArgs {
    #[command(flatten)]
    conn: Conn,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The system.
    #[arg(long)]
    system: String,
}

#[derive(clap::Args)]
struct DestroyL2Args {
    #[command(flatten)]
    system: SystemArgs,
    /// The L2 version.
    #[arg(long)]
    version: u32,
}

#[derive(clap::Args)]
struct RotateL3Args {
    #[command(flatten)]
    conn: Conn,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The service whose key to rotate.
    #[arg(long)]
    service: String,
}

#[derive(clap::Args)]
struct PrewarmArgs {
    #[command(flatten)]
    conn: Conn,
    /// The tenant whose keys to load.
    #[arg(long)]
    tenant: String,
}

#[derive(clap::Args)]
struct RotateArgs {
    #[command(flatten)]
    conn: Conn,
    /// Re-wrap every binding under the new version now and then REVOKE the previous versions (a suspected
    /// compromise of an IVK version).
    #[arg(long)]
    emergency: bool,
}

#[derive(clap::Args)]
struct MigrateArgs {
    #[command(flatten)]
    conn: Conn,
    /// The new seal provider.
    #[arg(long)]
    to: crate::seal_args::ProviderKind,
    #[command(flatten)]
    provider: crate::seal_args::SealProviderArgs,
}

/// Where the node's operator API is and how to authenticate.
#[derive(clap::Args, Clone)]
struct Conn {
    /// Data directory of a local node (`openkcm dev --data-dir`): gives the address, CA and operator certificate.
    #[arg(long, env = "OPENKCM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Operator API address (HOST:PORT).
    #[arg(long, env = "OPENKCM_OPERATOR_ADDR")]
    addr: Option<String>,
    /// CA certificate the node's certificate chains to (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Operator certificate (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Operator private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// TLS server name of the node.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Seconds to wait for the node's answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(clap::Args)]
struct InitArgs {
    #[command(flatten)]
    conn: Conn,
    /// `shamir` (the key ceremony of a Shamir node) or `recovery` (recovery shares of an unsealed auto-unseal node).
    #[arg(long, default_value = "shamir", value_parser = ["shamir", "recovery"])]
    mode: String,
    /// N: shares to make (default: one per recipient).
    #[arg(long)]
    shares: Option<usize>,
    /// M: shares needed to unseal.
    #[arg(long)]
    threshold: usize,
    /// A share holder's public key (age `age1…`, `ssh-ed25519 …`, `ssh-rsa …`) or a file holding one; one per share.
    #[arg(long = "recipient")]
    recipients: Vec<String>,
    /// A file of recipients, one public key per line.
    #[arg(long)]
    recipients_file: Option<PathBuf>,
    /// Directory for share-<i>.age and manifest.json (created; existing share files are never overwritten).
    #[arg(long, default_value = "ceremony")]
    out_dir: PathBuf,
}

#[derive(clap::Args)]
struct UnsealArgs {
    #[command(flatten)]
    conn: Conn,
    /// Your share file: the encrypted `share-<i>.age` (with --identity), or its decrypted content. Without it the
    /// share is read from standard input when piped, else typed at a prompt (not echoed).
    #[arg(long)]
    share_file: Option<PathBuf>,
    /// Your age identity file (AGE-SECRET-KEY-1…) or unencrypted SSH private key, to decrypt the share locally.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Clear the unseal progress and issue a new nonce (shares submitted so far must be submitted again).
    #[arg(long, conflicts_with_all = ["share_file", "identity"])]
    reset: bool,
    /// Automatic seals: ask the node to unseal through its seal now (no share).
    #[arg(long, conflicts_with_all = ["share_file", "identity", "reset"])]
    auto: bool,
}

struct Target {
    addr: String,
    server_name: String,
    config: std::sync::Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl Conn {
    fn target(&self) -> anyhow::Result<Target> {
        let from_dir = |f: &dyn Fn(&Path) -> PathBuf| self.data_dir.as_deref().map(f);
        let pick = |explicit: &Option<PathBuf>, derived: Option<PathBuf>, what: &str| {
            explicit.clone().or(derived).with_context(|| {
                format!(
                    "no {what}: pass --data-dir of a local node, or --addr, --ca, --cert and --key"
                )
            })
        };
        let ca = pick(
            &self.ca,
            from_dir(&|d| d.join("pki/ca.crt")),
            "CA certificate",
        )?;
        let cert = pick(
            &self.cert,
            from_dir(&|d| d.join("pki/operator-admin.crt")),
            "operator certificate",
        )?;
        let key = pick(
            &self.key,
            from_dir(&|d| d.join("pki/operator-admin.key")),
            "operator key",
        )?;
        let addr = match (&self.addr, &self.data_dir) {
            (Some(a), _) => a.clone(),
            (None, Some(d)) => {
                let path = d.join(crate::dev::OPERATOR_ADDR_FILE);
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "cannot read {} (is `openkcm dev --data-dir {}` running?)",
                            path.display(),
                            d.display()
                        )
                    })?
                    .trim()
                    .to_owned()
            }
            (None, None) => bail!("no node address: pass --data-dir of a local node, or --addr"),
        };
        let config = tls::client_config(&TlsFiles { ca, cert, key })?;
        Ok(Target {
            addr,
            server_name: self.server_name.clone(),
            config,
            timeout: Duration::from_secs(self.timeout),
        })
    }
}

impl Target {
    /// Calls the API; returns the JSON body of a 2xx answer, or the API's error sentence.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<serde_json::Value> {
        let (status, bytes) = openkcm_net::https::request(
            &self.addr,
            &self.server_name,
            self.config.clone(),
            method,
            path,
            body,
            self.timeout,
        )
        .await
        .with_context(|| format!("calling the operator API at {}", self.addr))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
            format!("the operator API answered {status} with a body that is not JSON")
        })?;
        if !(200..300).contains(&status) {
            let message = value
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("no error message");
            bail!("{message} (HTTP {status})");
        }
        Ok(value)
    }
}

/// Reads a recipients file: one public key per line; blank lines and `#` comments are skipped.
pub fn read_recipients_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = openkcm_providers::read_bounded_text(path, openkcm_providers::MAX_OPERATOR_FILE)
        .with_context(|| format!("reading the recipients file {}", path.display()))?;
    Ok(text
        .lines()
        // A `#` at the start of a line or after white space starts a comment.
        .map(|l| {
            let l = l.trim();
            match l.find(" #").or_else(|| l.find("\t#")) {
                Some(i) => l[..i].trim_end(),
                None => l,
            }
        })
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The recipients of `--recipient` (a key, or a file holding one) and `--recipients-file`.
pub fn recipients(list: &[String], file: &Option<PathBuf>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for r in list {
        let path = Path::new(r);
        if !r.starts_with("age1") && !r.starts_with("ssh-") && path.is_file() {
            out.push(
                openkcm_providers::read_bounded_text(path, openkcm_providers::MAX_OPERATOR_FILE)
                    .with_context(|| format!("reading the recipient file {}", path.display()))?
                    .trim()
                    .to_owned(),
            );
        } else {
            out.push(r.trim().to_owned());
        }
    }
    if let Some(f) = file {
        out.extend(read_recipients_file(f)?);
    }
    if let Some(i) = out.iter().position(|r| shamir::looks_private(r)) {
        bail!(
            "recipient {} is a PRIVATE key (AGE-SECRET-KEY-… or a private key file): give each holder's public key \
             (`age-keygen -y KEYFILE`, or the .pub file of an SSH key); nothing was sent",
            i + 1
        );
    }
    Ok(out)
}

/// Writes the ceremony's share files (never overwriting one) and manifest into `dir`.
pub fn write_ceremony(
    dir: &Path,
    manifest: &shamir::Manifest,
    files: &[(String, String)],
) -> anyhow::Result<()> {
    write_ceremony_named(dir, manifest, files, "manifest.json")
}

/// [`write_ceremony`] with the manifest under `manifest_name`.
pub fn write_ceremony_named(
    dir: &Path,
    manifest: &shamir::Manifest,
    files: &[(String, String)],
    manifest_name: &str,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, _) in files {
        let path = dir.join(name);
        if path.exists() {
            bail!(
                "{} already exists: move the previous ceremony's files away first (they are still someone's shares)",
                path.display()
            );
        }
    }
    for (name, armored) in files {
        openkcm_core::seal::write_private(&dir.join(name), armored.as_bytes())?;
    }
    let json = serde_json::to_vec_pretty(manifest)?;
    openkcm_core::seal::write_private(&dir.join(manifest_name), &json)?;
    Ok(())
}

fn is_age_file(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_string();
    let t = text.trim_start();
    t.starts_with("-----BEGIN AGE ENCRYPTED FILE-----") || t.starts_with("age-encryption.org/")
}

/// The share document to submit: decrypted from `--share-file` with `--identity`, read from `--share-file`,
/// read from standard input when it is piped, or typed at a prompt without echo.
fn share_document(args: &UnsealArgs) -> anyhow::Result<String> {
    let raw = match &args.share_file {
        Some(path) => openkcm_providers::read_bounded(path, MAX_SHARE_INPUT)
            .with_context(|| format!("reading the share file {}", path.display()))?,
        None if std::io::stdin().is_terminal() => {
            // Typed at a terminal: no echo, so the share never shows on screen or in a terminal log.
            rpassword::prompt_password(
                "Unseal share (the decrypted content of your share-<i>.age, one line; not echoed): ",
            )
            .context("reading the share from the terminal")?
            .into_bytes()
        }
        None => {
            // Piped in (`age -d share-1.age | openkcm operator unseal`, or the .age file itself with --identity).
            let mut all = Vec::new();
            std::io::stdin()
                .take(MAX_SHARE_INPUT + 1)
                .read_to_end(&mut all)
                .context("reading the share from standard input")?;
            if all.len() as u64 > MAX_SHARE_INPUT {
                all.zeroize();
                bail!(
                    "standard input holds more than {MAX_SHARE_INPUT} bytes: that is not a share"
                );
            }
            all
        }
    };
    let raw = openkcm_crypto::SecretBytes::new(raw);
    if raw.expose().iter().all(u8::is_ascii_whitespace) {
        bail!("no share was given (the share file or standard input is empty)");
    }
    if is_age_file(raw.expose()) {
        let Some(identity) = &args.identity else {
            bail!("the share file is age-encrypted: pass --identity with your age identity file or SSH private key (or pipe it decrypted: `age -d -i KEY share-<i>.age | openkcm operator unseal …`)");
        };
        let mut text =
            openkcm_providers::read_bounded_text(identity, openkcm_providers::MAX_OPERATOR_FILE)
                .with_context(|| format!("reading the identity {}", identity.display()))?;
        let first = text.trim_start();
        if first.starts_with("age1") || first.starts_with("ssh-") {
            text.zeroize();
            bail!(
                "{} holds a PUBLIC key; --identity takes the holder's private identity (the AGE-SECRET-KEY-1… file, or the SSH private key)",
                identity.display()
            );
        }
        let ids = shamir::parse_identities(&text);
        text.zeroize();
        let plain = shamir::decrypt_share_file(raw.expose(), &ids?)?;
        return String::from_utf8(plain.expose().to_vec())
            .map_err(|_| anyhow::anyhow!("the decrypted share is not text"));
    }
    String::from_utf8(raw.expose().to_vec())
        .map_err(|_| anyhow::anyhow!("the share is neither an age file nor text"))
}

/// Prints the progress of an unseal (`path` /v1/sys/unseal) or a recovery (/v1/sys/recover).
fn show_progress(v: &serde_json::Value, path: &str) {
    let recovery = path.ends_with("/recover");
    let sealed = v["sealed"].as_bool().unwrap_or(true);
    if !sealed {
        if recovery {
            println!("Recovered: the MasterKey was rebuilt from the recovery shares and the node is serving keys. Move it to a working seal now: openkcm operator migrate-seal --to …");
        } else {
            println!("Unsealed: the node is serving keys.");
        }
        return;
    }
    let duplicate = v["duplicate"].as_bool().unwrap_or(false);
    println!(
        "{} progress: {}/{}{}",
        if recovery { "Recovery" } else { "Unseal" },
        v["progress"],
        v["threshold"],
        if duplicate {
            " (this share had already been submitted; it counts once)"
        } else {
            ""
        }
    );
}

pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    tls::install_default_provider();
    match args.command {
        OperatorCommand::SealStatus(conn) => {
            let v = conn
                .target()?
                .call("GET", "/v1/sys/seal-status", Vec::new())
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        OperatorCommand::Seal(conn) => {
            let v = conn
                .target()?
                .call("POST", "/v1/sys/seal", b"{}".to_vec())
                .await?;
            println!(
                "Sealed (cluster {}).",
                v["cluster_id"].as_str().unwrap_or("?")
            );
        }
        OperatorCommand::Init(a) => {
            let recipients = recipients(&a.recipients, &a.recipients_file)?;
            let shares = a.shares.unwrap_or(recipients.len());
            // Refuse before the ceremony if the files could not be written afterwards.
            // The node holds the ceremony before the files are written here: make sure they can be, first.
            std::fs::create_dir_all(&a.out_dir).with_context(|| {
                format!(
                    "cannot create --out-dir {} (nothing was done)",
                    a.out_dir.display()
                )
            })?;
            let probe = a
                .out_dir
                .join(format!(".openkcm-write-test-{}", std::process::id()));
            std::fs::write(&probe, b"probe")
                .and_then(|()| std::fs::remove_file(&probe))
                .with_context(|| {
                    format!(
                        "cannot write into --out-dir {} (nothing was done)",
                        a.out_dir.display()
                    )
                })?;
            let prefix = if a.mode == "recovery" {
                "recovery-share"
            } else {
                "share"
            };
            for i in 1..=shares {
                let p = a.out_dir.join(format!("{prefix}-{i}.age"));
                if p.exists() {
                    bail!("{} already exists: choose another --out-dir", p.display());
                }
            }
            let body = serde_json::json!({
                "mode": a.mode,
                "shares": shares,
                "threshold": a.threshold,
                "recipients": recipients,
            });
            let v = a
                .conn
                .target()?
                .call("POST", "/v1/sys/init", serde_json::to_vec(&body)?)
                .await?;
            let manifest: shamir::Manifest = serde_json::from_value(v["manifest"].clone())
                .context("the node's answer holds no valid manifest")?;
            manifest.verify()?;
            let files: Vec<(String, String)> = v["shares"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| {
                            Some((
                                s["file"].as_str()?.to_owned(),
                                s["age"].as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if files.len() != shares {
                bail!(
                    "the node returned {} share files for {shares} shares",
                    files.len()
                );
            }
            let manifest_name = if a.mode == "recovery" {
                "recovery-manifest.json"
            } else {
                "manifest.json"
            };
            if let Err(e) = write_ceremony_named(&a.out_dir, &manifest, &files, manifest_name) {
                // The shares exist only in this answer now. They are encrypted to their holders, so printing them
                // is safe, and it is the only way not to lose them.
                println!("{}", serde_json::to_string_pretty(&v["shares"])?);
                println!("{}", serde_json::to_string_pretty(&manifest)?);
                bail!(
                    "the key ceremony COMPLETED on the node, but writing its files into {} failed: {e:#}. The encrypted \
                     shares and the manifest are printed above on standard output: save each \"age\" text as the file \
                     named beside it and hand it to its holder",
                    a.out_dir.display()
                );
            }
            if a.mode == "recovery" {
                println!(
                    "Recovery shares made: {shares} shares, {} needed to rebuild the MasterKey (openkcm operator recover). Files in {}: hand recovery-share-<i>.age to holder i; keep recovery-manifest.json.",
                    a.threshold,
                    a.out_dir.display()
                );
            } else {
                println!(
                    "Key ceremony complete: {shares} shares, {} needed to unseal. Files in {}: hand share-<i>.age to holder i; keep manifest.json.",
                    a.threshold,
                    a.out_dir.display()
                );
            }
        }
        OperatorCommand::MigrateSeal(a) => {
            // Secrets named by files here are read here and sent; the node never reads files on our behalf.
            let config = a
                .provider
                .config(a.to)?
                .inlined()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let seal_key = a.provider.seal_key(a.to)?;
            #[derive(serde::Serialize)]
            struct Migrate<'a> {
                to: &'a openkcm_providers::config::ProviderConfig,
                key_id: &'a str,
            }
            let mut body = serde_json::to_vec(&Migrate {
                to: &config,
                key_id: &seal_key,
            })?;
            let result = a
                .conn
                .target()?
                .call("POST", "/v1/sys/migrate-seal", body.clone())
                .await;
            body.zeroize();
            let v = result?;
            println!(
                "Seal migrated: the MasterKey is now sealed by {} (key {}). Restart the node with --seal {} and that provider's settings.",
                v["mode"].as_str().unwrap_or("?"),
                seal_key,
                v["mode"].as_str().unwrap_or("?")
            );
        }
        OperatorCommand::RotateL2(a) => {
            post_and_print(&a.conn, "/v1/sys/rotate-l2", a.body()).await?
        }
        OperatorCommand::Rewrap(a) => post_and_print(&a.conn, "/v1/sys/rewrap", a.body()).await?,
        OperatorCommand::DestroyL2(a) => post_l2_version(&a, "/v1/sys/destroy-l2").await?,
        OperatorCommand::CompromiseL2(a) => post_l2_version(&a, "/v1/sys/compromise-l2").await?,
        OperatorCommand::DestroyL3(a) => post_l3_version(&a, "/v1/sys/destroy-l3").await?,
        OperatorCommand::CompromiseL3(a) => post_l3_version(&a, "/v1/sys/compromise-l3").await?,
        OperatorCommand::RotateL3(a) => {
            let body = serde_json::json!({ "tenant": a.tenant, "service": a.service });
            post_and_print(&a.conn, "/v1/sys/rotate-l3", body).await?
        }
        OperatorCommand::Prewarm(a) => {
            let body = serde_json::json!({ "tenant": a.tenant });
            post_and_print(&a.conn, "/v1/sys/prewarm", body).await?
        }
        OperatorCommand::DeleteIvk(a) => {
            let body = serde_json::json!({ "version": a.version });
            post_and_print(&a.conn, "/v1/sys/delete-ivk", body).await?
        }
        OperatorCommand::RotateIvk(a) => {
            let body = serde_json::json!({ "emergency": a.emergency });
            post_and_print(&a.conn, "/v1/sys/rotate-ivk", body).await?
        }
        OperatorCommand::Recover(a) => {
            let target = a.conn.target()?;
            if a.auto {
                bail!(
                    "--auto does not apply to recover: recovery rebuilds the MasterKey from shares"
                );
            }
            let Some(status) = reset_or_status(&target, "/v1/sys/recover", a.reset).await? else {
                return Ok(());
            };
            submit_share(&target, "/v1/sys/recover", &a, &status).await?;
        }
        OperatorCommand::Unseal(a) => {
            let target = a.conn.target()?;
            let Some(status) = reset_or_status(&target, "/v1/sys/unseal", a.reset).await? else {
                return Ok(());
            };
            if status["mode"] != "shamir" && (a.share_file.is_some() || a.identity.is_some()) {
                bail!(
                    "this node uses the {} seal, which unseals without shares; recovery shares go to `openkcm operator recover` (when the seal cannot unseal: see seal-status \"reason\")",
                    status["mode"].as_str().unwrap_or("?")
                );
            }
            if a.auto || status["mode"] != "shamir" {
                let v = target
                    .call("POST", "/v1/sys/unseal", b"{}".to_vec())
                    .await?;
                show_progress(&v, "/v1/sys/unseal");
                return Ok(());
            }
            if status["initialized"] == false {
                bail!("the node is not initialised: hold the key ceremony first (openkcm operator init)");
            }
            submit_share(&target, "/v1/sys/unseal", &a, &status).await?;
        }
    }
    Ok(())
}

/// POSTs `body` to the node's operator API at `path` and prints the JSON answer.
async fn post_l2_version(a: &DestroyL2Args, path: &str) -> anyhow::Result<()> {
    let mut body = a.system.body();
    body["version"] = a.version.into();
    post_and_print(&a.system.conn, path, body).await
}

async fn post_l3_version(a: &DestroyL3Args, path: &str) -> anyhow::Result<()> {
    let body =
        serde_json::json!({ "tenant": a.tenant, "service": a.service, "version": a.version });
    post_and_print(&a.conn, path, body).await
}

async fn post_and_print(conn: &Conn, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
    let v = conn
        .target()?
        .call("POST", path, serde_json::to_vec(&body)?)
        .await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

impl SystemArgs {
    fn body(&self) -> serde_json::Value {
        serde_json::json!({ "tenant": self.tenant, "system": self.system })
    }
}

/// With `reset`, resets the progress of `path` and returns `None`; otherwise the seal status, or `None` (said so)
/// when the node is already unsealed.
async fn reset_or_status(
    target: &Target,
    path: &str,
    reset: bool,
) -> anyhow::Result<Option<serde_json::Value>> {
    if reset {
        let v = target
            .call("POST", path, br#"{"reset":true}"#.to_vec())
            .await?;
        match v["nonce"].as_str() {
            Some(n) => println!("Progress reset; new nonce {n}."),
            None => println!("Nothing to reset: this node is not waiting for shares."),
        }
        return Ok(None);
    }
    let status = target
        .call("GET", "/v1/sys/seal-status", Vec::new())
        .await?;
    if status["sealed"] == false {
        println!("The node is already unsealed.");
        return Ok(None);
    }
    Ok(Some(status))
}

/// Submits the share of `args` to `path` under the nonce of `status`, and shows the progress.
async fn submit_share(
    target: &Target,
    path: &str,
    a: &UnsealArgs,
    status: &serde_json::Value,
) -> anyhow::Result<()> {
    #[derive(serde::Serialize)]
    struct Submit<'a> {
        share: &'a str,
        nonce: &'a str,
    }
    let nonce = status["nonce"].as_str().unwrap_or_default().to_owned();
    let mut document = share_document(a)?;
    let mut body = serde_json::to_vec(&Submit {
        share: document.trim(),
        nonce: &nonce,
    })?;
    document.zeroize();
    let result = target.call("POST", path, body.clone()).await;
    body.zeroize();
    show_progress(&result?, path);
    Ok(())
}
