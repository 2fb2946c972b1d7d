//! `openkcm bench`: a KMIP load generator over persistent mTLS connections, and the floor it is compared with.
//!
//! * [`load`] runs a fixed workload (Get, Create, Encrypt, Decrypt or a mix) from pre-encoded requests over N
//!   connections with a pipelining depth, records every latency in an HDR histogram and reports throughput,
//!   percentiles, CPU time and peak memory of client and server.
//! * [`floor`] is the best any KMIP server could do on this machine: a TLS server that reads each framed message,
//!   seals it once with AES-256-GCM and writes the same bytes back.
//!
//! Only loopback addresses are accepted: this is a load generator, not a network tool.

pub mod floor;
pub mod load;
pub mod sys;

pub use load::{run, Config, Op, Report};
