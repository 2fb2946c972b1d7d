//! The load generator: pre-encoded KMIP requests over persistent mTLS connections, latencies in an HDR histogram.
//!
//! Each connection runs a closed loop: it keeps `pipeline` requests in flight, writing the ones it may send as one
//! buffer, and times each request from the moment its bytes are handed to TLS to the moment its whole response has
//! been read. Requests of the warm-up are sent and answered but not recorded.

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{algorithm, block_cipher_mode, operation as op, usage_mask};
use openkcm_kmip::payload::{self, CipherRequest, CipherResponse, CryptoParams};
use openkcm_kmip::{tags as t, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The operation a run repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Get of one AES-256 key.
    Get,
    /// Create of a new AES-256 key (each request makes a key).
    Create,
    /// AES-256-GCM Encrypt of `payload` bytes, server-generated IV.
    Encrypt,
    /// AES-256-GCM Decrypt of `payload` bytes.
    Decrypt,
    /// The mix in [`MIXED`]: per 8 requests, 3 Get, 2 Encrypt, 2 Decrypt and 1 Create.
    Mixed,
}

/// The order of requests in a mixed run, repeated.
pub const MIXED: [Op; 8] = [
    Op::Get,
    Op::Encrypt,
    Op::Decrypt,
    Op::Get,
    Op::Create,
    Op::Encrypt,
    Op::Decrypt,
    Op::Get,
];

impl std::str::FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "get" => Self::Get,
            "create" => Self::Create,
            "encrypt" => Self::Encrypt,
            "decrypt" => Self::Decrypt,
            "mixed" => Self::Mixed,
            other => {
                return Err(format!(
                    "unknown operation {other:?} (get, create, encrypt, decrypt, mixed)"
                ))
            }
        })
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Get => "get",
            Self::Create => "create",
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Mixed => "mixed",
        })
    }
}

/// Bounds of a run: a load generator must not be able to run away.
pub const MAX_CONNECTIONS: usize = 1024;
/// Deepest pipeline per connection.
pub const MAX_PIPELINE: usize = 256;
/// Longest measured duration.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Largest Encrypt/Decrypt payload.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Most requests in one run.
pub const MAX_REQUESTS: u64 = 1_000_000_000;
/// Longest wait for one response (or one connection) that `--timeout` may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// What to run, against what.
#[derive(Clone)]
pub struct Config {
    /// Server address (a loopback host:port).
    pub addr: String,
    /// Name to verify in the server certificate.
    pub server_name: String,
    /// mTLS client configuration.
    pub tls: Arc<rustls::ClientConfig>,
    /// The operation.
    pub op: Op,
    /// Number of persistent connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Measured duration (after the warm-up), unless `requests` ends the run first.
    pub duration: Duration,
    /// Stop after this many measured requests.
    pub requests: Option<u64>,
    /// Unmeasured warm-up.
    pub warmup: Duration,
    /// Encrypt/Decrypt payload size in bytes.
    pub payload: usize,
    /// KMIP version of the requests.
    pub version: ProtocolVersion,
    /// The server's process id, to report its CPU time and peak memory.
    pub server_pid: Option<u32>,
    /// The target is the floor echo server: responses are the request bytes (see [`crate::floor`]).
    pub floor: bool,
    /// Print a progress bar on stderr.
    pub progress: bool,
    /// A label for the Markdown row (e.g. "edge core custody").
    pub label: String,
    /// How long a connection (TCP and TLS handshake) and each response may take; a request not answered in time
    /// fails its connection and counts as an error.
    pub timeout: Duration,
}

/// What a run measured. Latencies are in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub op: Op,
    pub connections: usize,
    pub pipeline: usize,
    pub payload_bytes: usize,
    pub kmip_version: String,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub requests: u64,
    /// Measured requests that failed: error responses, and requests lost with a connection that failed.
    pub errors: u64,
    /// Connections that failed during the run (closed by the server, timed out, or sent something unreadable).
    pub connections_failed: u64,
    /// The first error response or failure seen, for the operator.
    pub first_error: Option<String>,
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// CPU seconds of this client during the measured window.
    pub client_cpu_s: f64,
    /// CPU seconds of the server process during the measured window (with `--server-pid`).
    pub server_cpu_s: Option<f64>,
    /// Peak resident memory of the client, KiB.
    pub client_peak_rss_kib: Option<u64>,
    /// Peak resident memory of the server process, KiB (with `--server-pid`).
    pub server_peak_rss_kib: Option<u64>,
}

impl Report {
    /// The Markdown table header matching [`Report::markdown_row`].
    pub fn markdown_header() -> &'static str {
        "| run | op | conns | depth | ops/s | P50 µs | P90 µs | P99 µs | P99.9 µs | max µs | errors | client CPU s | server CPU s | server peak RSS MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    }

    /// One Markdown table row.
    pub fn markdown_row(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
        format!(
            "| {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.2} | {} | {} |",
            self.label,
            self.op,
            self.connections,
            self.pipeline,
            self.ops_per_sec,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.errors,
            self.client_cpu_s,
            opt(self.server_cpu_s),
            opt(self.server_peak_rss_kib.map(|k| k as f64 / 1024.0)),
        )
    }
}

impl Config {
    fn check(&self) -> anyhow::Result<()> {
        if !(1..=MAX_CONNECTIONS).contains(&self.connections) {
            bail!("--connections must be 1..={MAX_CONNECTIONS}");
        }
        if !(1..=MAX_PIPELINE).contains(&self.pipeline) {
            bail!("--pipeline must be 1..={MAX_PIPELINE}");
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            bail!(
                "--duration must be more than 0 and at most {} s",
                MAX_DURATION.as_secs()
            );
        }
        if self.warmup > MAX_DURATION {
            bail!("--warmup must be at most {} s", MAX_DURATION.as_secs());
        }
        if !(1..=MAX_PAYLOAD).contains(&self.payload) {
            bail!("--payload must be 1..={MAX_PAYLOAD} bytes");
        }
        if self.requests.is_some_and(|r| r == 0 || r > MAX_REQUESTS) {
            bail!("--requests must be 1..={MAX_REQUESTS}");
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            bail!(
                "--timeout must be more than 0 and at most {} s",
                MAX_TIMEOUT.as_secs()
            );
        }
        Ok(())
    }
}

/// Resolves `addr` and insists that every address is loopback (for the load generator and the floor server alike,
/// before anything connects or binds).
pub async fn loopback(addr: &str) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("cannot resolve {addr}"))?
        .collect();
    match addrs.first() {
        None => bail!("{addr} resolves to no address"),
        Some(_) if addrs.iter().any(|a| !a.ip().is_loopback()) => bail!(
            "{addr} is not a loopback address: the benchmarks only run on this machine (127.0.0.1, ::1)"
        ),
        Some(a) => Ok(*a),
    }
}

/// The pre-encoded requests of a run, and what a decrypt needs.
struct Workload {
    /// Encoded request messages, sent in turn.
    requests: Vec<Arc<[u8]>>,
}

fn message(version: ProtocolVersion, operation: u32, payload: Item) -> Vec<u8> {
    openkcm_ttlv::encode(&RequestMessage::new(version, vec![(operation, payload)]).to_item())
}

fn create_payload(version: ProtocolVersion) -> Item {
    create_payload_with(version, Vec::new())
}

/// Create of an AES-256 Encrypt/Decrypt key, with `extra` attributes.
fn create_payload_with(version: ProtocolVersion, extra: Vec<Attribute>) -> Item {
    let mut attrs = vec![
        Attribute::new(
            "Cryptographic Algorithm",
            Value::Enumeration(algorithm::AES),
        ),
        Attribute::new("Cryptographic Length", Value::Integer(256)),
        Attribute::new(
            "Cryptographic Usage Mask",
            Value::Integer(usage_mask::ENCRYPT | usage_mask::DECRYPT),
        ),
    ];
    attrs.extend(extra);
    payload::create_request(version, &attrs)
}

/// AES-256-GCM with a 16-byte tag, every field named (some servers, PyKMIP among them, require the algorithm and
/// the tag length besides the mode).
fn gcm() -> CryptoParams {
    CryptoParams {
        mode: Some(block_cipher_mode::GCM),
        algorithm: Some(algorithm::AES),
        tag_length: Some(16),
        ..CryptoParams::default()
    }
}

/// One request on a setup connection; its payload, or the server's refusal as an error.
async fn setup_call(
    client: &mut KmipClient,
    version: ProtocolVersion,
    operation: u32,
    payload: Item,
) -> anyhow::Result<Item> {
    let request = RequestMessage::new(version, vec![(operation, payload)]).to_item();
    let answer = client.call(&request).await.map_err(|e| {
        let text = e.to_string();
        // A floor server echoes the request message back.
        if text.contains("got tag 0x420078") {
            anyhow::anyhow!("{text} (the server echoed the request: if it is `openkcm bench-floor`, add --floor)")
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let response = ResponseMessage::parse(&answer).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let item = response
        .items
        .into_iter()
        .next()
        .context("the server answered with no batch item")?;
    item.result.map_err(|e| {
        anyhow::anyhow!(
            "setup {} refused: {} (reason {:#x})",
            openkcm_kmip::enums::operation::name(operation),
            e.message,
            e.reason
        )
    })
}

/// Creates the key the run uses (an active AES-256 key) and pre-encodes the requests.
async fn prepare(cfg: &Config) -> anyhow::Result<Workload> {
    let v = cfg.version;
    let plaintext = vec![0x5Au8; cfg.payload];
    if cfg.floor {
        // The floor echoes bytes; any request of the right size will do.
        let uid = "00000000-0000-4000-8000-000000000000";
        let get = message(v, op::GET, payload::uid_payload(t::REQUEST_PAYLOAD, uid));
        let enc = CipherRequest {
            uid: Some(uid.into()),
            params: Some(gcm()),
            data: plaintext.clone(),
            ..CipherRequest::default()
        };
        let bytes = match cfg.op {
            Op::Get | Op::Mixed => get,
            Op::Create => message(v, op::CREATE, create_payload(v)),
            Op::Encrypt | Op::Decrypt => message(v, op::ENCRYPT, enc.into_item()),
        };
        return Ok(Workload {
            requests: vec![bytes.into()],
        });
    }
    tokio::time::timeout(cfg.timeout * 4, setup(cfg, plaintext))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "setup: the server did not complete Create, Activate and the Encrypt/Decrypt check within {} s",
                (cfg.timeout * 4).as_secs_f64()
            )
        })?
}

/// Creates and activates the run's key over one connection; checks Encrypt and Decrypt when the run uses them.
async fn setup(cfg: &Config, plaintext: Vec<u8>) -> anyhow::Result<Workload> {
    let v = cfg.version;
    let mut client = tokio::time::timeout(
        cfg.timeout,
        KmipClient::connect(&cfg.addr, cfg.tls.clone(), &cfg.server_name),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "connecting to {} for setup (TCP and TLS handshake) took more than {} s",
            cfg.addr,
            cfg.timeout.as_secs_f64()
        )
    })?
    .context("connecting for setup")?;
    // Create, then Activate: the plainest way every server supports (some refuse an Activation Date at Create).
    let created = setup_call(&mut client, v, op::CREATE, create_payload(v)).await?;
    let uid = created
        .child(t::UNIQUE_IDENTIFIER)
        .and_then(Item::as_text)
        .context("Create answered without a Unique Identifier")?
        .to_owned();
    setup_call(
        &mut client,
        v,
        op::ACTIVATE,
        payload::uid_payload(t::REQUEST_PAYLOAD, &uid),
    )
    .await?;
    if matches!(cfg.op, Op::Get | Op::Create) {
        // No cipher requests: no GCM check (which would also need KMIP 1.4).
        let request = match cfg.op {
            Op::Get => message(v, op::GET, payload::uid_payload(t::REQUEST_PAYLOAD, &uid)),
            _ => message(v, op::CREATE, create_payload(v)),
        };
        return Ok(Workload {
            requests: vec![request.into()],
        });
    }
    let encrypt = CipherRequest {
        uid: Some(uid.clone()),
        params: Some(gcm()),
        data: plaintext.clone(),
        ..CipherRequest::default()
    };
    let sealed =
        CipherResponse::parse(&setup_call(&mut client, v, op::ENCRYPT, encrypt.to_item()).await?)
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let decrypt = CipherRequest {
        uid: Some(uid.clone()),
        params: Some(gcm()),
        data: sealed.data.clone(),
        iv: sealed.iv.clone(),
        tag: sealed.tag.clone(),
        ..CipherRequest::default()
    };
    // The decrypt request must work before it is timed.
    let opened =
        CipherResponse::parse(&setup_call(&mut client, v, op::DECRYPT, decrypt.to_item()).await?)
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if opened.data != plaintext {
        bail!("setup: Decrypt did not return the plaintext Encrypt was given");
    }
    let encoded = |o: Op| -> Vec<u8> {
        match o {
            Op::Get => message(v, op::GET, payload::uid_payload(t::REQUEST_PAYLOAD, &uid)),
            Op::Create => message(v, op::CREATE, create_payload(v)),
            Op::Encrypt => message(v, op::ENCRYPT, encrypt.to_item()),
            Op::Decrypt => message(v, op::DECRYPT, decrypt.to_item()),
            Op::Mixed => Vec::new(),
        }
    };
    let requests = match cfg.op {
        Op::Mixed => MIXED.iter().map(|o| encoded(*o).into()).collect(),
        o => vec![encoded(o).into()],
    };
    Ok(Workload { requests })
}

/// Shared state of a run.
struct Shared {
    /// Measuring has begun (the warm-up is over).
    measuring: AtomicBool,
    /// Stop sending.
    stop: AtomicBool,
    /// Measured requests answered so far (all connections).
    done: AtomicU64,
    /// Measured requests that failed (error responses, requests lost with their connection).
    errors: AtomicU64,
    /// Connections that failed during the run.
    connections_failed: AtomicU64,
    /// Measured requests sent so far (for the --requests bound).
    sent: AtomicU64,
    limit: Option<u64>,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    fn note_error(&self, what: String) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(what);
        }
    }

    /// Whether one more request may be sent.
    fn may_send(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.limit {
            Some(limit) if self.measuring.load(Ordering::Relaxed) => {
                self.sent.fetch_add(1, Ordering::Relaxed) < limit
            }
            _ => true,
        }
    }
}

/// Runs the benchmark and reports.
pub async fn run(cfg: Config) -> anyhow::Result<Report> {
    cfg.check()?;
    loopback(&cfg.addr).await?;
    let workload = Arc::new(prepare(&cfg).await?);
    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(cfg.warmup.is_zero()),
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        connections_failed: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        limit: cfg.requests,
        first_error: std::sync::Mutex::new(None),
    });
    // Connect everything first: handshakes are not part of the measurement.
    let mut streams = Vec::with_capacity(cfg.connections);
    for i in 0..cfg.connections {
        streams.push(
            connect(&cfg)
                .await
                .with_context(|| format!("opening connection {} of {}", i + 1, cfg.connections))?,
        );
    }
    let mut tasks = Vec::with_capacity(cfg.connections);
    for (i, stream) in streams.into_iter().enumerate() {
        let workload = workload.clone();
        let shared = shared.clone();
        let (pipeline, floor, timeout) = (cfg.pipeline, cfg.floor, cfg.timeout);
        tasks.push(tokio::spawn(async move {
            connection_loop(stream, &workload, &shared, pipeline, floor, timeout, i).await
        }));
    }
    if !cfg.warmup.is_zero() {
        tokio::time::sleep(cfg.warmup).await;
        shared.measuring.store(true, Ordering::Relaxed);
    }
    let cpu0 = crate::sys::own_cpu_seconds();
    let server_cpu0 = cfg.server_pid.and_then(crate::sys::process_cpu_seconds);
    let started = Instant::now();
    // Wait for the duration (or the request bound), drawing progress.
    let deadline = started + cfg.duration;
    let mut last_draw = Instant::now();
    loop {
        let now = Instant::now();
        let done = shared.done.load(Ordering::Relaxed);
        if now >= deadline
            || cfg.requests.is_some_and(|r| done >= r)
            || tasks.iter().all(|t| t.is_finished())
        {
            break;
        }
        if cfg.progress && now.duration_since(last_draw) >= Duration::from_millis(500) {
            draw_progress(
                &cfg,
                started.elapsed(),
                done,
                shared.errors.load(Ordering::Relaxed),
            );
            last_draw = now;
        }
        tokio::time::sleep(Duration::from_millis(20).min(deadline.saturating_duration_since(now)))
            .await;
    }
    let elapsed = started.elapsed();
    let cpu = crate::sys::own_cpu_seconds() - cpu0;
    let server_cpu = match (
        server_cpu0,
        cfg.server_pid.and_then(crate::sys::process_cpu_seconds),
    ) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    shared.stop.store(true, Ordering::Relaxed);
    let mut histogram = new_histogram();
    for task in tasks {
        match task.await {
            Ok(h) => histogram.add(&h).context("merging latency histograms")?,
            Err(e) => bail!("a connection task failed: {e}"),
        }
    }
    if cfg.progress {
        draw_progress(
            &cfg,
            elapsed,
            histogram.len(),
            shared.errors.load(Ordering::Relaxed),
        );
        eprintln!();
    }
    let requests = histogram.len();
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let first_error = shared.first_error.lock().ok().and_then(|f| f.clone());
    Ok(Report {
        label: cfg.label.clone(),
        op: cfg.op,
        connections: cfg.connections,
        pipeline: cfg.pipeline,
        payload_bytes: cfg.payload,
        kmip_version: cfg.version.to_string(),
        warmup_s: cfg.warmup.as_secs_f64(),
        duration_s: elapsed.as_secs_f64(),
        requests,
        errors: shared.errors.load(Ordering::Relaxed),
        connections_failed: shared.connections_failed.load(Ordering::Relaxed),
        first_error,
        ops_per_sec: requests as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_us: us(0.5),
        p90_us: us(0.9),
        p99_us: us(0.99),
        p999_us: us(0.999),
        max_us: histogram.max() as f64 / 1000.0,
        mean_us: histogram.mean() / 1000.0,
        client_cpu_s: cpu,
        server_cpu_s: server_cpu,
        client_peak_rss_kib: crate::sys::own_peak_rss_kib(),
        server_peak_rss_kib: cfg.server_pid.and_then(crate::sys::process_peak_rss_kib),
    })
}

fn draw_progress(cfg: &Config, elapsed: Duration, done: u64, errors: u64) {
    const WIDTH: usize = 30;
    let total = cfg.duration.as_secs_f64();
    let fraction = match cfg.requests {
        Some(r) => done as f64 / r as f64,
        None => elapsed.as_secs_f64() / total,
    }
    .clamp(0.0, 1.0);
    let filled = (fraction * WIDTH as f64) as usize;
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    eprint!(
        "\r{} {:>7} [{}{}] {:5.1}/{:.0} s {:>10.0} ops/s  errors {}   ",
        cfg.label,
        cfg.op,
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        elapsed.as_secs_f64().min(total),
        total,
        rate,
        errors
    );
}

/// Latencies in nanoseconds, 1 ns to 60 s, three significant digits.
fn new_histogram() -> Histogram<u64> {
    // The bounds are valid constants; `new_with_bounds` cannot fail for them.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(cfg: &Config) -> anyhow::Result<Tls> {
    tokio::time::timeout(cfg.timeout, connect_once(cfg))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "connecting to {} (TCP and TLS handshake) took more than {} s",
                cfg.addr,
                cfg.timeout.as_secs_f64()
            )
        })?
}

async fn connect_once(cfg: &Config) -> anyhow::Result<Tls> {
    let name = rustls::pki_types::ServerName::try_from(cfg.server_name.clone())
        .map_err(|_| anyhow::anyhow!("{:?} is not a valid server name", cfg.server_name))?;
    let tcp = tokio::net::TcpStream::connect(&cfg.addr)
        .await
        .with_context(|| format!("cannot connect to {}", cfg.addr))?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(cfg.tls.clone())
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {} failed", cfg.addr))?;
    Ok(tls)
}

/// One connection's closed loop. Returns its latency histogram (measured requests only); a failure of the connection
/// is recorded in `shared` (the connection, and its measured requests in flight as errors).
async fn connection_loop(
    stream: Tls,
    workload: &Workload,
    shared: &Shared,
    pipeline: usize,
    floor: bool,
    timeout: Duration,
    index: usize,
) -> Histogram<u64> {
    let mut histogram = new_histogram();
    // Send times of the requests in flight, oldest first, and whether each is measured.
    let mut in_flight: std::collections::VecDeque<(Instant, bool)> =
        std::collections::VecDeque::with_capacity(pipeline);
    // The last error response on this connection, warm-up included: it usually explains a close that follows
    // (a server refusing a connection over its limit answers, then closes).
    let mut last_refusal: Option<String> = None;
    let result = drive(
        stream,
        workload,
        shared,
        pipeline,
        floor,
        timeout,
        index,
        &mut histogram,
        &mut in_flight,
        &mut last_refusal,
    )
    .await;
    if let Err(e) = result {
        let lost = in_flight.iter().filter(|(_, measured)| *measured).count() as u64;
        shared.errors.fetch_add(lost, Ordering::Relaxed);
        shared.connections_failed.fetch_add(1, Ordering::Relaxed);
        shared.note_error(match last_refusal {
            Some(refusal) => format!("{refusal}; then: {e:#}"),
            None => format!("{e:#}"),
        });
    }
    histogram
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    stream: Tls,
    workload: &Workload,
    shared: &Shared,
    pipeline: usize,
    floor: bool,
    timeout: Duration,
    index: usize,
    histogram: &mut Histogram<u64>,
    in_flight: &mut std::collections::VecDeque<(Instant, bool)>,
    last_refusal: &mut Option<String>,
) -> anyhow::Result<()> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    // Connections start at different points of a mixed sequence, so the mix holds at every instant.
    let mut next = index % workload.requests.len();
    let mut out = Vec::with_capacity(pipeline * 128);
    let mut body = Vec::with_capacity(4096);
    // One timer per connection, moved only when it fires early: arming a timer per response would cost the load
    // generator as much as it costs a server.
    let mut timer = Box::pin(tokio::time::sleep(timeout));
    loop {
        out.clear();
        let mut batch = 0;
        while in_flight.len() + batch < pipeline && shared.may_send() {
            out.extend_from_slice(&workload.requests[next]);
            next = (next + 1) % workload.requests.len();
            batch += 1;
        }
        if batch > 0 {
            let measured = shared.measuring.load(Ordering::Relaxed);
            // Counted as in flight from here: a request lost while being written is an error too.
            in_flight.extend(std::iter::repeat_n((Instant::now(), measured), batch));
            let write = async {
                writer.write_all(&out).await?;
                writer.flush().await
            };
            tokio::time::timeout(timeout, write)
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "the server took in no request for {} s",
                        timeout.as_secs_f64()
                    )
                })?
                .context("sending requests")?;
            let sent = Instant::now();
            for slot in in_flight.iter_mut().rev().take(batch) {
                slot.0 = sent;
            }
        }
        let Some(&(sent, measured)) = in_flight.front() else {
            // Nothing in flight and nothing more to send: the run is over for this connection.
            return Ok(());
        };
        let waiting_since = Instant::now();
        let read = read_response(&mut reader, &mut body, floor);
        tokio::pin!(read);
        // The read is never dropped half-way (it is not cancel-safe): the timer only decides whether to give up.
        let ok = loop {
            tokio::select! {
                biased;
                r = &mut read => break r?,
                () = &mut timer => {
                    let due = waiting_since + timeout;
                    if Instant::now() >= due {
                        bail!("no response within {} s", timeout.as_secs_f64());
                    }
                    timer.as_mut().reset(due.into());
                }
            }
        };
        let latency = sent.elapsed();
        in_flight.pop_front();
        if measured {
            let _ = histogram.record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1));
            shared.done.fetch_add(1, Ordering::Relaxed);
            if let Err(why) = &ok {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                shared.note_error(why.clone());
            }
        }
        if let Err(why) = ok {
            *last_refusal = Some(why);
        }
    }
}

/// Reads one framed response into `body` and says whether it reports success (every batch item Success).
async fn read_response<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    body: &mut Vec<u8>,
    floor: bool,
) -> anyhow::Result<Result<(), String>> {
    let mut header = [0u8; 8];
    reader
        .read_exact(&mut header)
        .await
        .context("reading a response (the server closed the connection?)")?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > crate::floor::MAX_MESSAGE * 8 {
        bail!("a response announced {len} bytes");
    }
    body.clear();
    body.extend_from_slice(&header);
    body.resize(8 + len, 0);
    reader
        .read_exact(&mut body[8..])
        .await
        .context("reading a response")?;
    if floor {
        // The floor echoes the request message; a KMIP server answers with a response message.
        if header[..3] != [0x42, 0x00, 0x78] {
            bail!(
                "the server answered with tag 0x{:02X}{:02X}{:02X}, not an echo of the request: --floor is for `openkcm bench-floor`",
                header[0], header[1], header[2]
            );
        }
        return Ok(Ok(()));
    }
    let item = openkcm_ttlv::decode(body, &openkcm_ttlv::Limits::default())
        .map_err(|e| anyhow::anyhow!("undecodable response: {e}"))?;
    // Responses may carry key material (Get): clear the buffer once decoded.
    body.iter_mut().for_each(|b| *b = 0);
    let verdict = item
        .children_with(t::BATCH_ITEM)
        .find_map(|b| {
            let status = b.child(t::RESULT_STATUS).and_then(Item::as_enum);
            (status != Some(0)).then(|| {
                b.child(t::RESULT_MESSAGE)
                    .and_then(Item::as_text)
                    .unwrap_or("a batch item failed")
                    .to_owned()
            })
        })
        .map_or(Ok(()), Err);
    let mut item = item;
    item.zeroize_bytes();
    Ok(verdict)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse_and_print() {
        for o in ["get", "create", "encrypt", "decrypt", "mixed"] {
            assert_eq!(o.parse::<Op>().unwrap().to_string(), o);
        }
        assert!("sign".parse::<Op>().is_err());
    }

    #[tokio::test]
    async fn only_loopback_targets_are_accepted() {
        assert!(loopback("127.0.0.1:5696").await.is_ok());
        assert!(loopback("[::1]:5696").await.is_ok());
        let e = loopback("192.0.2.1:5696").await.unwrap_err().to_string();
        assert!(e.contains("not a loopback address"), "{e}");
    }

    #[test]
    fn the_histogram_reports_microseconds() {
        let mut h = new_histogram();
        for v in [50_000u64, 100_000, 150_000] {
            h.record(v).unwrap();
        }
        assert_eq!(h.value_at_quantile(0.5) / 1000, 100);
    }
}
