//! Limits on log lines that peers can cause. A client that sends bad requests, or a scanner that opens and drops
//! connections, must not be able to fill the disk through the log. Each kind of event gets at most
//! [`PER_SECOND`] lines a second at its normal level. Beyond that the events are logged at debug level only and
//! counted, and the count is written at info level once the second is over (by a small background thread) and at
//! shutdown ([`flush`]).

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Lines per second and kind at the normal level.
pub const PER_SECOND: u32 = 20;

/// Refused KMIP operations ([`crate::log_refusal`]).
pub static REFUSED_OPERATIONS: LogLimit = LogLimit::new("refused operations");
/// Failed or timed-out TLS handshakes and certificates that name no identity.
pub static FAILED_HANDSHAKES: LogLimit = LogLimit::new("failed TLS handshakes");
/// Connections refused for a connection limit.
pub static REFUSED_CONNECTIONS: LogLimit = LogLimit::new("refused connections");
/// Messages refused before any operation ran (undecodable, oversized, not a request).
pub static BAD_MESSAGES: LogLimit = LogLimit::new("unacceptable messages");

const ALL: [&LogLimit; 4] = [
    &REFUSED_OPERATIONS,
    &FAILED_HANDSHAKES,
    &REFUSED_CONNECTIONS,
    &BAD_MESSAGES,
];

/// A one-second window of at most `limit` lines for one kind of event.
pub struct LogLimit {
    what: &'static str,
    state: Mutex<Window>,
}

struct Window {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
    limit: u32,
}

impl Window {
    /// Starts a new window if the current one is over; returns the count left out of the one that ended.
    fn roll(&mut self, now: Instant) -> u64 {
        let over = self
            .started
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1));
        if !over {
            return 0;
        }
        self.started = Some(now);
        self.logged = 0;
        std::mem::take(&mut self.suppressed)
    }

    fn admit(&mut self, now: Instant) -> (bool, u64) {
        let ended = self.roll(now);
        if self.logged < self.limit {
            self.logged += 1;
            (true, ended)
        } else {
            self.suppressed += 1;
            (false, ended)
        }
    }
}

impl LogLimit {
    /// A limit of [`PER_SECOND`] lines a second for events described as `what` (plural, for the count line).
    pub const fn new(what: &'static str) -> Self {
        Self::with_limit(what, PER_SECOND)
    }

    const fn with_limit(what: &'static str, limit: u32) -> Self {
        Self {
            what,
            state: Mutex::new(Window {
                started: None,
                logged: 0,
                suppressed: 0,
                limit,
            }),
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether one more event may be logged at its normal level now. When not, the event is counted, and the
    /// caller logs it at debug level.
    pub fn admit(&'static self) -> bool {
        start_flusher();
        let (admitted, ended) = self.window().admit(Instant::now());
        self.report(ended);
        admitted
    }

    fn report(&self, count: u64) {
        if count > 0 {
            tracing::info!(
                count,
                "{count} more {} were logged at debug level only (at most {PER_SECOND} lines a second)",
                self.what
            );
        }
    }

    /// Writes the count of a window that is over.
    fn flush_ended(&self, now: Instant) {
        let ended = {
            let mut w = self.window();
            if w.suppressed == 0 {
                0
            } else {
                w.roll(now)
            }
        };
        self.report(ended);
    }

    /// Writes the count of the current window whether or not it is over.
    fn flush_now(&self) {
        let count = std::mem::take(&mut self.window().suppressed);
        self.report(count);
    }
}

/// Writes every pending count now (call at shutdown).
pub fn flush() {
    for limit in ALL {
        limit.flush_now();
    }
}

fn start_flusher() {
    static FLUSHER: OnceLock<()> = OnceLock::new();
    FLUSHER.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("log-limit".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(250));
                let now = Instant::now();
                for limit in ALL {
                    limit.flush_ended(now);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the log-limit thread; counts are written with later lines");
        }
    });
}

/// Logs at `$level` while `$limit` admits the event, at debug level otherwise:
/// `limited!(FAILED_HANDSHAKES, info, %addr, "TLS handshake failed")`.
#[macro_export]
macro_rules! limited {
    ($limit:expr, $level:ident, $($arg:tt)+) => {
        if $limit.admit() {
            tracing::$level!($($arg)+)
        } else {
            tracing::debug!($($arg)+)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_logs_its_limit_and_counts_the_rest() {
        let limit = LogLimit::with_limit("test events", 3);
        let t0 = Instant::now();
        let admitted: Vec<bool> = (0..10).map(|_| limit.window().admit(t0).0).collect();
        assert_eq!(admitted.iter().filter(|a| **a).count(), 3);
        assert!(admitted[..3].iter().all(|a| *a));
        // Same window: still counted.
        assert_eq!(
            limit.window().admit(t0 + Duration::from_millis(999)),
            (false, 0)
        );
        // The flusher sees nothing to write while the window lasts...
        limit.flush_ended(t0 + Duration::from_millis(500));
        assert_eq!(limit.window().suppressed, 8);
        // ...and takes the count once it is over, so the next window starts clean.
        limit.flush_ended(t0 + Duration::from_secs(1));
        assert_eq!(limit.window().suppressed, 0);
        assert_eq!(
            limit.window().admit(t0 + Duration::from_millis(1100)),
            (true, 0)
        );
    }

    #[test]
    fn a_new_window_hands_back_the_count_of_the_last_one() {
        let limit = LogLimit::with_limit("test events", 1);
        let t0 = Instant::now();
        assert_eq!(limit.window().admit(t0), (true, 0));
        assert_eq!(limit.window().admit(t0), (false, 0));
        assert_eq!(limit.window().admit(t0), (false, 0));
        assert_eq!(limit.window().admit(t0 + Duration::from_secs(2)), (true, 2));
    }
}
