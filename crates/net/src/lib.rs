//! Transport for every OpenKCM role: TLS configuration (rustls with the aws-lc-rs provider), the development
//! PKI, peer identity from client certificates, and KMIP framing for servers, clients and connection pools.
//!
//! This crate never looks inside a KMIP operation and never holds key material beyond what passes through a
//! message buffer. Peer input must never panic it: a hostile or silent client costs one task, bounded by timeouts
//! and size limits, and never delays other clients.
#![forbid(unsafe_code)]

pub mod client;
pub mod identity;
pub mod pki;
pub mod server;
pub mod tls;

pub use client::{KmipClient, KmipPool};
pub use identity::PeerIdentity;
pub use server::{serve, KmipService, ServerLimits};

/// Refusals logged at info level per second, process-wide; more are logged at debug level and counted. A client
/// sending a stream of bad requests must not be able to fill the disk through the log.
pub const REFUSALS_LOGGED_PER_SECOND: u32 = 20;

/// What to do with one refusal (see [`RefusalLimiter`]).
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    /// Log it; `suppressed` refusals of the previous window were not logged at info level.
    Log { suppressed: u64 },
    /// Over the limit: debug level only.
    Suppress,
}

/// A fixed one-second window of at most `limit` info-level refusal lines.
struct RefusalLimiter {
    window: Option<std::time::Instant>,
    logged: u32,
    suppressed: u64,
    limit: u32,
}

impl RefusalLimiter {
    const fn new(limit: u32) -> Self {
        Self {
            window: None,
            logged: 0,
            suppressed: 0,
            limit,
        }
    }

    fn admit(&mut self, now: std::time::Instant) -> Admit {
        let mut carried = 0;
        let expired = self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= std::time::Duration::from_secs(1));
        if expired {
            carried = std::mem::take(&mut self.suppressed);
            self.window = Some(now);
            self.logged = 0;
        }
        if self.logged < self.limit {
            self.logged += 1;
            Admit::Log {
                suppressed: carried,
            }
        } else {
            self.suppressed += 1;
            Admit::Suppress
        }
    }
}

static REFUSALS: std::sync::Mutex<RefusalLimiter> =
    std::sync::Mutex::new(RefusalLimiter::new(REFUSALS_LOGGED_PER_SECOND));

/// Logs a refused KMIP operation: who asked, for what, and why. Refusals are operational signals (and, for foreign
/// identifiers, probes), so they go to info level, at most [`REFUSALS_LOGGED_PER_SECOND`] a second; the rest go to
/// debug level and the next info line says how many were left out. The message never contains key material. The
/// reason logged is the one the client receives in `version`.
pub fn log_refusal(
    peer: &PeerIdentity,
    version: openkcm_kmip::ProtocolVersion,
    operation: u32,
    error: &openkcm_kmip::KmipError,
) {
    let admit = REFUSALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .admit(std::time::Instant::now());
    let operation = openkcm_kmip::enums::operation::name(operation);
    let reason = openkcm_kmip::enums::result_reason::name(error.reason_for(version));
    match admit {
        Admit::Log { suppressed } => {
            if suppressed > 0 {
                tracing::info!(
                    suppressed,
                    "{suppressed} more refused operations in the previous second were logged at debug level only"
                );
            }
            tracing::info!(
                peer = %peer,
                operation,
                reason,
                version = %version,
                message = %error.message,
                "operation refused"
            );
        }
        Admit::Suppress => tracing::debug!(
            peer = %peer,
            operation,
            reason,
            version = %version,
            message = %error.message,
            "operation refused"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn refusal_lines_are_limited_per_second_and_the_rest_counted() {
        let mut limiter = RefusalLimiter::new(3);
        let t0 = Instant::now();
        let first: Vec<Admit> = (0..10).map(|_| limiter.admit(t0)).collect();
        assert_eq!(
            first[..3],
            [
                Admit::Log { suppressed: 0 },
                Admit::Log { suppressed: 0 },
                Admit::Log { suppressed: 0 }
            ]
        );
        assert!(first[3..].iter().all(|a| *a == Admit::Suppress));
        // Still the same window.
        assert_eq!(
            limiter.admit(t0 + Duration::from_millis(999)),
            Admit::Suppress
        );
        // The next window logs again and reports the 8 left out.
        assert_eq!(
            limiter.admit(t0 + Duration::from_secs(1)),
            Admit::Log { suppressed: 8 }
        );
        assert_eq!(
            limiter.admit(t0 + Duration::from_millis(1500)),
            Admit::Log { suppressed: 0 }
        );
    }
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
