//! Prometheus metrics for `/metrics`. Counters move once per batch, not per record.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

pub struct Metrics {
    registry: Registry,
    records_in: Family<Labels, Counter>,
    pub records_out: Counter,
    pub anomalies: Counter,
    pub session_anomalies: Counter,
    pub templates: Gauge,
    pub queue_records: Gauge,
    pub queue_capacity: Gauge,
    pub seal_seconds: Histogram,
    dropped: Family<Labels, Counter>,
    rejected: Family<Labels, Counter>,
    pub downstream_up: Gauge,
    pub downstream_errors: Counter,
    connections: Family<Labels, Gauge>,
    pub explain_queue: Gauge,
    pub outbox_records: Counter,
    pub records_suppressed: Counter,
    pub summaries: Counter,
    pub queue_bytes: Gauge,
    pub queue_bytes_capacity: Gauge,
    pub redelivered_records: Counter,
    pub replayed_records: Counter,
    /// Senders refused for their credentials so far (how many of them were said on stderr).
    credential_refusals: std::sync::atomic::AtomicU64,
}

/// Where records come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Tcp,
    Http,
    Forward,
    OtlpHttp,
    OtlpGrpc,
}

impl Input {
    pub fn name(self) -> &'static str {
        match self {
            Input::Tcp => "tcp",
            Input::Http => "http",
            Input::Forward => "forward",
            Input::OtlpHttp => "otlp_http",
            Input::OtlpGrpc => "otlp_grpc",
        }
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            records_in: Family::default(),
            records_out: Counter::default(),
            anomalies: Counter::default(),
            session_anomalies: Counter::default(),
            templates: Gauge::default(),
            queue_records: Gauge::default(),
            queue_capacity: Gauge::default(),
            seal_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            dropped: Family::default(),
            rejected: Family::default(),
            downstream_up: Gauge::default(),
            downstream_errors: Counter::default(),
            connections: Family::default(),
            explain_queue: Gauge::default(),
            outbox_records: Counter::default(),
            records_suppressed: Counter::default(),
            summaries: Counter::default(),
            queue_bytes: Gauge::default(),
            queue_bytes_capacity: Gauge::default(),
            redelivered_records: Counter::default(),
            replayed_records: Counter::default(),
            credential_refusals: Default::default(),
            registry: Registry::default(),
        };
        registry.register("turbolog_records_in", "Records accepted, by input", m.records_in.clone());
        registry.register("turbolog_records_out", "Records delivered downstream (session verdict records included)", m.records_out.clone());
        registry.register("turbolog_anomalies", "Records tagged anomalous", m.anomalies.clone());
        registry.register("turbolog_session_anomalies", "Closed sessions judged anomalous", m.session_anomalies.clone());
        registry.register("turbolog_templates", "Templates the engine knows", m.templates.clone());
        registry.register("turbolog_queue_records", "Records accepted and not yet delivered", m.queue_records.clone());
        registry.register("turbolog_queue_capacity", "The bound on accepted, undelivered records (--queue)", m.queue_capacity.clone());
        registry.register("turbolog_seal_seconds", "Time to seal a window into the state directory", m.seal_seconds.clone());
        registry.register("turbolog_records_dropped", "Input refused by reason (the sender was told, or the line was logged)", m.dropped.clone());
        registry.register("turbolog_requests_rejected", "HTTP requests and Forward messages refused, by reason", m.rejected.clone());
        registry.register("turbolog_downstream_up", "1 while the downstream takes what is written", m.downstream_up.clone());
        registry.register("turbolog_downstream_errors", "Failed writes or connects to the downstream (each retried)", m.downstream_errors.clone());
        registry.register("turbolog_connections", "Open input connections, by input", m.connections.clone());
        registry.register("turbolog_explain_queue", "Anomalous templates waiting for the LLM", m.explain_queue.clone());
        registry.register("turbolog_outbox_records", "Records kept in the state's outbox at shutdown because the downstream did not take them", m.outbox_records.clone());
        registry.register("turbolog_records_suppressed", "Records held back by --reduce (each counted in a summary record)", m.records_suppressed.clone());
        registry.register("turbolog_summaries", "Summary records written by --reduce (one per template and window with records held back)", m.summaries.clone());
        registry.register("turbolog_disk_queue_bytes", "Bytes of the disk queue's segments (accepted records kept until delivered)", m.queue_bytes.clone());
        registry.register("turbolog_disk_queue_capacity_bytes", "The bound on the disk queue (--queue-bytes); 0 without a disk queue", m.queue_bytes_capacity.clone());
        registry.register(
            "turbolog_replayed_records",
            "Records delivered after a restart from the disk queue (accepted, not confirmed delivered before it)",
            m.replayed_records.clone(),
        );
        registry.register(
            "turbolog_redelivered_records",
            "Replayed records that were being sent when serve stopped: the downstream may have them twice (at-least-once)",
            m.redelivered_records.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn records_in(&self, input: Input, n: usize) {
        self.records_in.get_or_create(&vec![("input", input.name())]).inc_by(n as u64);
    }

    pub fn dropped(&self, reason: &'static str, n: usize) {
        self.dropped.get_or_create(&vec![("reason", reason)]).inc_by(n as u64);
    }

    /// A sender refused for its credentials (`tls`, `token`, `shared_key`): counted in
    /// `turbolog_requests_rejected` and said on stderr (the first ten, then every thousandth).
    pub fn refused_credentials(&self, reason: &'static str, why: &str) {
        self.rejected(reason);
        self.say_refused_credentials(why);
    }

    /// Says a refusal for credentials on stderr: the first ten, then every thousandth.
    pub fn say_refused_credentials(&self, why: &str) {
        let n = self.credential_refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n < 10 || n.is_multiple_of(1000) {
            eprintln!("turbolog: warning: refused {why}; counted in turbolog_requests_rejected");
        }
    }

    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&vec![("reason", reason)]).inc();
    }

    pub fn connection(&self, input: Input, delta: i64) {
        self.connections.get_or_create(&vec![("input", input.name())]).inc_by(delta);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        // writing to a String cannot fail
        let _ = encode(&mut s, &self.registry);
        s
    }
}
