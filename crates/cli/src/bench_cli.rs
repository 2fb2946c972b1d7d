//! `openkcm bench` (the KMIP load generator) and `openkcm bench-floor` (the AES-over-TLS floor server).

use anyhow::Context;
use openkcm_bench::{Config, Op, Report};
use openkcm_net::tls::{self, TlsFiles};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `openkcm bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Server address (host:port); loopback only.
    #[arg(long, env = "OPENKCM_KMIP_ADDR", default_value = "127.0.0.1:5696")]
    addr: String,
    /// CA certificate that signed the server's certificate.
    #[arg(
        long,
        env = "OPENKCM_KMIP_CA",
        default_value = "./openkcm-data/pki/ca.crt"
    )]
    ca: PathBuf,
    /// Client certificate (names tenant and service).
    #[arg(
        long,
        env = "OPENKCM_KMIP_CERT",
        default_value = "./openkcm-data/pki/demo-default.crt"
    )]
    cert: PathBuf,
    /// Client private key.
    #[arg(
        long,
        env = "OPENKCM_KMIP_KEY",
        default_value = "./openkcm-data/pki/demo-default.key"
    )]
    key: PathBuf,
    /// Server name to verify in its certificate.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Operation: get, create, encrypt, decrypt (AES-256-GCM), or mixed (per 8: 3 get, 2 encrypt, 2 decrypt,
    /// 1 create).
    #[arg(long, default_value = "get")]
    op: Op,
    /// Persistent connections (1 to 1024).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Requests in flight per connection (1 to 256).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Measured seconds after the warm-up (more than 0, at most 3600).
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    duration: f64,
    /// Stop after this many measured requests (or at --duration, whichever comes first).
    #[arg(long)]
    requests: Option<u64>,
    /// Unmeasured warm-up seconds (at most 3600).
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    warmup: f64,
    /// Seconds a connection (TCP and TLS handshake) and each response may take (at most 600). A request not
    /// answered in time fails its connection and counts as an error.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    timeout: f64,
    /// Encrypt/Decrypt payload bytes (1 to 65536).
    #[arg(long, default_value_t = 32)]
    payload: usize,
    /// KMIP version of the requests. Encrypt, Decrypt and mixed use AES-GCM, which needs 1.4 or later; Get and
    /// Create run with any version.
    #[arg(long = "kmip-version", default_value = "1.4")]
    version: String,
    /// The server's process id: its CPU time and peak memory are reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The target is `openkcm bench-floor` (it echoes requests).
    #[arg(long)]
    floor: bool,
    /// Label of the run in the output (default: "openkcm", or "floor" with --floor).
    #[arg(long)]
    label: Option<String>,
    /// Print one JSON object (stdout) instead of the human summary. The exit status is 0 when every measured
    /// request succeeded, 3 when the run completed with failed requests or connections (the report is still
    /// printed), 1 when it could not run.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Also print the Markdown table row (after the header with --markdown-header).
    #[arg(long)]
    markdown: bool,
    /// Print the Markdown table header before the row.
    #[arg(long, requires = "markdown")]
    markdown_header: bool,
    /// No progress bar on stderr.
    #[arg(long)]
    quiet: bool,
}

fn seconds(v: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| {
        format!("{what} must be a finite, non-negative number of seconds, not {v}")
    })
}

/// A run that completed but had failed requests or connections: its report was printed, the exit status is 3.
#[derive(Debug)]
pub struct CompletedWithErrors {
    errors: u64,
    connections_failed: u64,
    first: Option<String>,
}

impl std::fmt::Display for CompletedWithErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the run completed with {} failed request(s) and {} failed connection(s)",
            self.errors, self.connections_failed
        )?;
        if let Some(first) = &self.first {
            write!(f, "; first: {first}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CompletedWithErrors {}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    tls::install_default_provider();
    let version = crate::kmip_cli::parse_version(&args.version)?;
    if version < openkcm_kmip::ProtocolVersion::new(1, 4)
        && matches!(args.op, Op::Encrypt | Op::Decrypt | Op::Mixed)
    {
        anyhow::bail!(
            "--op {} uses AES-GCM, whose tag field needs KMIP 1.4 or later",
            args.op
        );
    }
    let files = TlsFiles {
        ca: args.ca.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
    };
    let config = Config {
        addr: args.addr.clone(),
        server_name: args.server_name.clone(),
        tls: tls::client_config(&files).context("loading the TLS files (--ca, --cert, --key)")?,
        op: args.op,
        connections: args.connections,
        pipeline: args.pipeline,
        duration: seconds(args.duration, "--duration")?,
        requests: args.requests,
        warmup: seconds(args.warmup, "--warmup")?,
        payload: args.payload,
        version,
        server_pid: args.server_pid,
        floor: args.floor,
        progress: !args.quiet && !args.json,
        label: args
            .label
            .clone()
            .unwrap_or_else(|| if args.floor { "floor" } else { "openkcm" }.to_owned()),
        timeout: seconds(args.timeout, "--timeout")?,
    };
    let report = openkcm_bench::run(config).await?;
    print(&args, &report)?;
    if report.errors > 0 || report.connections_failed > 0 {
        return Err(CompletedWithErrors {
            errors: report.errors,
            connections_failed: report.connections_failed,
            first: report.first_error.clone(),
        }
        .into());
    }
    Ok(())
}

fn print(args: &BenchArgs, r: &Report) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
    } else {
        writeln!(
            out,
            "{} {}: {} requests in {:.2} s over {} connection(s), depth {}: {:.0} ops/s",
            r.label, r.op, r.requests, r.duration_s, r.connections, r.pipeline, r.ops_per_sec
        )?;
        writeln!(
            out,
            "latency µs: P50 {:.1}  P90 {:.1}  P99 {:.1}  P99.9 {:.1}  max {:.1}  mean {:.1}",
            r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us, r.mean_us
        )?;
        writeln!(
            out,
            "errors {}{}{}; client CPU {:.2} s{}",
            r.errors,
            if r.connections_failed > 0 {
                format!(", failed connections {}", r.connections_failed)
            } else {
                String::new()
            },
            r.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            r.client_cpu_s,
            match (r.server_cpu_s, r.server_peak_rss_kib) {
                (Some(c), Some(m)) => format!(
                    "; server CPU {c:.2} s, peak RSS {:.1} MiB",
                    m as f64 / 1024.0
                ),
                _ => String::new(),
            }
        )?;
    }
    if args.markdown {
        if args.markdown_header {
            writeln!(out, "{}", Report::markdown_header())?;
        }
        writeln!(out, "{}", r.markdown_row())?;
    }
    out.flush()?;
    Ok(())
}

/// Arguments of `openkcm bench-floor`.
#[derive(clap::Args)]
pub struct FloorArgs {
    /// Listen address (loopback only); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:5699")]
    addr: String,
    /// CA certificate that signed the clients' certificates.
    #[arg(long, default_value = "./openkcm-data/pki/ca.crt")]
    ca: PathBuf,
    /// Server certificate.
    #[arg(long, default_value = "./openkcm-data/pki/server.crt")]
    cert: PathBuf,
    /// Server private key.
    #[arg(long, default_value = "./openkcm-data/pki/server.key")]
    key: PathBuf,
}

pub async fn floor(args: FloorArgs) -> anyhow::Result<()> {
    tls::install_default_provider();
    // Refused before anything binds.
    openkcm_bench::load::loopback(&args.addr).await?;
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        anyhow::bail!("bench-floor listens on loopback addresses only, not {local}");
    }
    let config = tls::server_config(&TlsFiles {
        ca: args.ca,
        cert: args.cert,
        key: args.key,
    })
    .context("loading the TLS files (--ca, --cert, --key)")?;
    println!("OPENKCM FLOOR READY addr={local}");
    tokio::select! {
        r = openkcm_bench::floor::serve(listener, config) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
