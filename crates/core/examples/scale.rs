//! Scale figures of the key hierarchy over time (issue 6, DESIGN §15), on PostgreSQL:
//!
//! ```text
//! cargo run --release -p openkcm-core --example scale -- TENANTS [POSTGRES_URL]
//! ```
//!
//! Provisions TENANTS tenants with one system and one service each in a fresh database (made from `POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`, dropped at the end), then measures: provisioning time, one
//! IVK rotation, the scrubber's re-wraps per second, resident memory with 1 000 active tenants, and cold hydration
//! (an evicted tenant's service key, from storage, within the sovereign TTL so that the L1 provider is not called)
//! as P50/P99. Prints one line per figure. The `local` L1 provider keeps one small key file per system in a
//! temporary directory.

use openkcm_core::{Core, CoreConfig};
use openkcm_crypto::SecretKey;
use openkcm_providers::local::LocalProvider;
use openkcm_store::{KeyStore, PostgresStore};
use sqlx::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tenants: usize = args
        .next()
        .ok_or("usage: scale TENANTS [POSTGRES_URL]")?
        .parse()?;
    let admin = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("openkcm_scale_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let url = format!("{}/{name}", admin.rsplit_once('/').ok_or("bad URL")?.0);
    let result = run(tenants, &url).await;
    drop(conn);
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    result
}

async fn run(tenants: usize, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let l1_dir = tempfile::tempdir()?;
    let store: Arc<dyn KeyStore> = Arc::new(PostgresStore::open(url).await?);
    let mk = SecretKey::generate()?;
    let core = Arc::new(
        Core::open(
            store.clone(),
            &mk,
            Arc::new(LocalProvider::new(l1_dir.path().to_path_buf())),
            CoreConfig::default(),
        )
        .await?,
    );
    println!("tenants: {tenants} (one system and one service each), PostgreSQL store");

    // Provisioning, 16 at a time.
    let started = Instant::now();
    let mut next = 0usize;
    while next < tenants {
        let batch: Vec<_> = (next..(next + 16).min(tenants))
            .map(|i| {
                let core = core.clone();
                tokio::spawn(async move { core.provision(&format!("t{i:06}"), "sys", "svc").await })
            })
            .collect();
        for b in batch {
            b.await??;
        }
        next += 16;
        if next % 10_000 < 16 {
            eprintln!("  provisioned {next} tenants in {:.0?}", started.elapsed());
        }
    }
    let provision = started.elapsed();
    println!(
        "provision: {:.1} s total, {:.2} ms per tenant, {:.0} tenants/s",
        provision.as_secs_f64(),
        provision.as_secs_f64() * 1000.0 / tenants as f64,
        tenants as f64 / provision.as_secs_f64()
    );

    // IVK rotation: one write whatever the tenant count.
    let started = Instant::now();
    core.rotate_ivk().await?;
    println!(
        "IVK rotation: {:.2} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // Scrubber: re-wrap every binding under the new IVK version.
    let started = Instant::now();
    // One pass over everything (each pass lists every tenant: the per-minute pace of `openkcm dev` bounds the
    // re-wraps, not the listing).
    let rewrapped = core
        .scrub_bindings(usize::MAX, Duration::ZERO)
        .await?
        .rewrapped;
    let scrub = started.elapsed();
    println!(
        "scrubber: {rewrapped} bindings in {:.1} s, {:.0} re-wraps/s (listing included)",
        scrub.as_secs_f64(),
        rewrapped as f64 / scrub.as_secs_f64()
    );

    // Memory with 1 000 active tenants, and cold hydration of each from storage (L1 not called: the bindings are
    // within the sovereign TTL).
    core.evict_all();
    let active = tenants.min(1000);
    let before = rss_kib();
    let mut cold = Vec::with_capacity(active);
    for i in 0..active {
        let t = format!("t{i:06}");
        let started = Instant::now();
        core.current_l3(&t, "svc").await?;
        cold.push(started.elapsed());
    }
    let after = rss_kib();
    cold.sort();
    println!(
        "cold hydration (storage + IVK + L2 + L3 unwraps, no L1): P50 {:.0} µs, P99 {:.0} µs over {active} tenants",
        percentile(&cold, 0.5).as_secs_f64() * 1e6,
        percentile(&cold, 0.99).as_secs_f64() * 1e6
    );
    println!(
        "memory: RSS {:.1} MiB with {active} active tenants ({:+.1} MiB for their keys); cached L2/L3: {:?}",
        after as f64 / 1024.0,
        (after as f64 - before as f64) / 1024.0,
        core.cached_keys()
    );
    Ok(())
}
