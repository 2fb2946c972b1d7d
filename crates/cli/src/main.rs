//! `openkcm`: one binary for every OpenKCM role. This crate only parses arguments and wires the libraries
//! together; behaviour lives in the library crates.
#![forbid(unsafe_code)]

mod bench_cli;
mod dev;
mod kmip_cli;
mod metrics;
mod operator_cli;
mod seal_args;

use clap::{Parser, Subcommand};

/// OpenKCM — sovereign, multi-tenant key management over KMIP.
#[derive(Parser)]
#[command(name = "openkcm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Core and Edge in one process for development, with everything under --data-dir.
    Dev(Box<dev::DevArgs>),
    /// Operate a node: seal-status, init (key ceremony), unseal, seal, recover, migrate-seal; key rotation and
    /// retirement (rotate-ivk, delete-ivk, rotate-l3, destroy-l3, compromise-l3, rotate-l2, rewrap, destroy-l2,
    /// compromise-l2); prewarm.
    Operator(Box<operator_cli::OperatorArgs>),
    /// A KMIP client for humans and scripts (prints JSON).
    Kmip(kmip_cli::KmipArgs),
    /// Print a KMIP credentials-file entry (salted PBKDF2 hash) for a password read from standard input.
    CredentialHash(CredentialHashArgs),
    /// Load a KMIP server with a fixed workload and report throughput and latency percentiles (loopback only).
    Bench(bench_cli::BenchArgs),
    /// Serve the benchmark floor: mTLS echo of every request plus one AES-256-GCM seal (loopback only).
    BenchFloor(bench_cli::FloorArgs),
}

/// Arguments of `openkcm credential-hash`.
#[derive(clap::Args)]
struct CredentialHashArgs {
    /// `username` (Username and Password credentials) or `device` (Device credentials, by serial number).
    #[arg(long, value_parser = ["username", "device"])]
    kind: String,
    /// The Username, or the Device Serial Number.
    #[arg(long)]
    name: String,
}

/// Reads the password from standard input (first line) and prints one JSON entry for the credentials file.
fn credential_hash(args: CredentialHashArgs) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    let entry = openkcm_edge::credentials::CredentialEntry::new(&args.kind, &args.name, password)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    println!("{}", serde_json::to_string(&entry)?);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dev(args) => dev::run(*args).await,
            Command::Kmip(args) => kmip_cli::run(args).await,
            Command::Operator(args) => operator_cli::run(*args).await,
            Command::CredentialHash(args) => credential_hash(args),
            Command::Bench(args) => bench_cli::run(args).await,
            Command::BenchFloor(args) => bench_cli::floor(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<bench_cli::CompletedWithErrors>().is_some() => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(3)
        }
        Err(e) => {
            // Print the chain of causes, skipping a cause whose text its parent already quotes.
            let mut message = e.to_string();
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
            }
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
