//! The metrics of `openkcm dev` (DESIGN §11, ADR-025), served on the loopback `/metrics` listener: seal state, IVK
//! version, keys in the Core's cache, and the IVK scrubber's progress. Values known only at scrape time (seal state,
//! cache sizes) are read then; the scrubber's are recorded after each of its passes.

use openkcm_core::hierarchy::ScrubPass;
use openkcm_core::Node;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Which cache a key count is of.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LayerLabel {
    layer: &'static str,
}

/// The registry and the metrics `openkcm dev` records.
pub struct DevMetrics {
    node: Arc<Node>,
    registry: Registry,
    sealed: Gauge,
    ivk_active_version: Gauge,
    cached_keys: Family<LayerLabel, Gauge>,
    scrub_passes: Counter,
    scrub_rewrapped: Counter,
    scrub_failed: Counter,
    scrub_remaining: Gauge,
    scrub_waiting: Gauge,
    scrub_next_due: Gauge,
}

impl DevMetrics {
    /// The metrics of `node`.
    pub fn new(node: Arc<Node>) -> Arc<Self> {
        let mut m = Self {
            node,
            sealed: Gauge::default(),
            ivk_active_version: Gauge::default(),
            cached_keys: Family::default(),
            scrub_passes: Counter::default(),
            scrub_rewrapped: Counter::default(),
            scrub_failed: Counter::default(),
            scrub_remaining: Gauge::default(),
            scrub_waiting: Gauge::default(),
            scrub_next_due: Gauge::default(),
            registry: Registry::with_prefix("openkcm"),
        };
        m.registry.register(
            "sealed",
            "1 while the Core is sealed (no key operation), 0 while it serves keys",
            m.sealed.clone(),
        );
        m.registry.register(
            "ivk_active_version",
            "The ACTIVE internal versioned key (IVK) version (0 while sealed)",
            m.ivk_active_version.clone(),
        );
        m.registry.register(
            "core_cached_keys",
            "Plaintext keys in the Core's cache, by layer (l2 system keys, l3 service key versions)",
            m.cached_keys.clone(),
        );
        m.registry.register(
            "ivk_scrub_passes",
            "IVK scrubber passes run",
            m.scrub_passes.clone(),
        );
        m.registry.register(
            "ivk_scrub_rewrapped",
            "L2 active bindings the IVK scrubber re-wrapped under the ACTIVE IVK version",
            m.scrub_rewrapped.clone(),
        );
        m.registry.register(
            "ivk_scrub_failed",
            "L2 active bindings the IVK scrubber could not re-wrap (see the log)",
            m.scrub_failed.clone(),
        );
        m.registry.register(
            "ivk_scrub_remaining",
            "Bindings due for re-wrapping that the last scrubber pass left for the next (its per-minute limit)",
            m.scrub_remaining.clone(),
        );
        m.registry.register(
            "ivk_scrub_waiting",
            "Bindings under an older IVK version younger than the scrub age, at the last pass",
            m.scrub_waiting.clone(),
        );
        m.registry.register(
            "ivk_scrub_next_due_timestamp_seconds",
            "When the first waiting binding becomes due (Unix time; 0: none waits)",
            m.scrub_next_due.clone(),
        );
        Arc::new(m)
    }

    /// Records one scrubber pass.
    pub fn record_scrub(&self, pass: &ScrubPass) {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        let g = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.scrub_passes.inc();
        self.scrub_rewrapped.inc_by(n(pass.rewrapped));
        self.scrub_failed.inc_by(n(pass.failed));
        self.scrub_remaining.set(g(pass.remaining));
        self.scrub_waiting.set(g(pass.waiting));
        self.scrub_next_due.set(pass.next_due.unwrap_or(0));
    }
}

impl openkcm_net::metrics_http::MetricsSource for DevMetrics {
    fn render(&self) -> String {
        match self.node.core() {
            Some(core) => {
                self.sealed.set(0);
                let active = core
                    .ivk_versions()
                    .into_iter()
                    .find(|v| v.state == openkcm_core::keyring::IvkState::Active)
                    .map_or(0, |v| i64::from(v.version));
                self.ivk_active_version.set(active);
                let (l2, l3) = core.cached_keys();
                for (layer, n) in [("l2", l2), ("l3", l3)] {
                    self.cached_keys
                        .get_or_create(&LayerLabel { layer })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            None => {
                self.sealed.set(1);
                self.ivk_active_version.set(0);
                for layer in ["l2", "l3"] {
                    self.cached_keys.get_or_create(&LayerLabel { layer }).set(0);
                }
            }
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }

    fn ready(&self) -> bool {
        !self.node.is_sealed()
    }
}
