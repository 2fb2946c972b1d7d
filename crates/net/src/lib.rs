//! Transport for every OpenKCM role: TLS configuration (rustls with the aws-lc-rs provider), the development
//! PKI, peer identity from client certificates, and KMIP framing for servers, clients and connection pools.
//!
//! This crate never looks inside a KMIP operation and never holds key material beyond what passes through a
//! message buffer. Peer input must never panic it: a hostile or silent client costs one task, bounded by timeouts
//! and size limits, and never delays other clients.
#![forbid(unsafe_code)]

pub mod client;
pub mod https;
pub mod identity;
pub mod log_limit;
pub mod metrics_http;
pub mod pki;
pub mod server;
pub mod tls;

pub use client::{KmipClient, KmipPool};
pub use identity::PeerIdentity;
pub use server::{serve, KmipService, ServerLimits};

/// Logs a refused KMIP operation: who asked, for what, and why. Refusals are operational signals (and, for foreign
/// identifiers, probes), so they go to info level, at most [`log_limit::PER_SECOND`] a second; the rest go to
/// debug level and are counted (see [`log_limit`]). The message never contains key material. The reason logged is
/// the one the client receives in `version`.
pub fn log_refusal(
    peer: &PeerIdentity,
    version: openkcm_kmip::ProtocolVersion,
    operation: u32,
    error: &openkcm_kmip::KmipError,
) {
    let operation = openkcm_kmip::enums::operation::name(operation);
    let reason = openkcm_kmip::enums::result_reason::name(error.reason_for(version));
    limited!(
        log_limit::REFUSED_OPERATIONS,
        info,
        peer = %peer,
        operation,
        reason,
        version = %version,
        message = %error.message,
        "operation refused"
    );
}

/// Errors of the transport layer. Messages are sentences an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A certificate or key could not be read or parsed.
    #[error("{0}")]
    Pki(String),
    /// TLS configuration failed.
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// An I/O error, with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The peer sent something that is not a valid KMIP message.
    #[error("the peer sent an invalid KMIP message: {0}")]
    Protocol(String),
    /// The connection broke while a request was outstanding.
    #[error("the connection to the server was lost: {0}")]
    ConnectionLost(String),
    /// A timeout.
    #[error("{0} timed out")]
    Timeout(&'static str),
}

impl NetError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
