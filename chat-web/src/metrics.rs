//! `/metrics`: a measurement of the server in the Prometheus text format.
//!
//! Nothing is counted here. The hub counts as it works ([`HubStats`]: one
//! addition where it already does the work), and a scrape asks the
//! server's loop for a [`ServerSnapshot`] (the counters plus the levels it
//! adds up only when asked); this module writes that snapshot out. So the
//! fan-out path pays nothing for metrics, scraped or not, and every figure
//! of one scrape is of the same moment.
//!
//! The snapshot goes through `prometheus-client`'s collector interface
//! into a registry made for the scrape, and out through its encoder of the
//! Prometheus text format (version 0.0.4), which takes care of names,
//! help, types, `_total` suffixes and label escaping.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use transport_async::{HubCloseReason, HubStats, ServerSnapshot};

/// The `Content-Type` of what [`encode`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every metric name is `chat_` and then its own.
const PREFIX: &str = "chat";

/// A snapshot, as a collector for one scrape.
#[derive(Debug)]
struct Snapshot(ServerSnapshot);

fn figure(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help, unit): (&str, &str, Option<&Unit>),
    metric: impl EncodeMetric,
) -> fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

/// A metric: its name (after the prefix), help, unit and value.
type Figure = (&'static str, &'static str, Option<&'static Unit>, u64);

const BYTES: Option<&Unit> = Some(&Unit::Bytes);

impl Collector for Snapshot {
    #[rustfmt::skip]
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let s = &self.0;
        let gauges: [Figure; 6] = [
            ("connections_open", "Connections accepted and not yet ended.", None, s.connections as u64),
            ("sockets_open", "Sockets held, closing ones still flushing included.", None, s.sockets as u64),
            ("members", "Logged-in connections.", None, s.members as u64),
            ("rooms", "Rooms that exist.", None, s.rooms as u64),
            ("output_unflushed", "Output owed to connections, not yet written (the output backlog).", BYTES, s.unflushed_bytes),
            ("room_backlog", "Bytes the rooms hold for their slowest members.", BYTES, s.room_backlog_bytes),
        ];
        for (name, help, unit, value) in gauges {
            // A level never exceeds what an i64 holds; saturate, not wrap.
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            figure(&mut e, (name, help, unit), ConstGauge::new(value))?;
        }
        let st = &s.stats;
        let counters: [Figure; 14] = [
            ("connections_accepted", "Connections accepted, refused ones included.", None, st.accepted),
            ("logins", "Successful logins.", None, st.logins),
            ("logins_refused", "Logins the application refused.", None, st.logins_refused),
            ("logins_held", "Login attempts held back for a while.", None, st.logins_held),
            ("logins_deferred", "Login attempts answered err:retry-later.", None, st.logins_deferred),
            ("messages_in", "Messages relayed to a room.", None, st.messages),
            ("private_messages_in", "Private messages relayed.", None, st.private_messages),
            ("deliveries_out", "Message deliveries: one per message per member it was queued for.", None, st.deliveries),
            ("received", "Bytes received over all connections.", BYTES, st.bytes_received),
            ("written", "Bytes written over all connections.", BYTES, st.bytes_written),
            ("pings", "Keepalive pings sent.", None, st.pings),
            ("input_pauses", "Times a connection's input was paused to slow it down.", None, st.input_pauses),
            ("slow_consumers", "Connections closed as slow consumers (err:slow-consumer).", None, st.closes(HubCloseReason::SlowConsumer)),
            ("keepalive_timeouts", "Connections closed for silence after a ping.", None, st.closes(HubCloseReason::KeepaliveTimeout)),
        ];
        for (name, help, unit, value) in counters {
            figure(&mut e, (name, help, unit), ConstCounter::new(value))?;
        }
        closes(&mut e, st)
    }
}

/// `chat_closes_total{reason="..."}`, one sample for every reason.
fn closes(e: &mut DescriptorEncoder<'_>, st: &HubStats) -> fmt::Result {
    let metric = ConstCounter::new(0u64);
    let help = "Connections ended, by reason.";
    let mut family = e.encode_descriptor("closes", help, None, metric.metric_type())?;
    for reason in HubCloseReason::ALL {
        let labels = [("reason", reason.as_str())];
        ConstCounter::new(st.closes(reason)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes `snapshot` in the Prometheus text format.
pub fn encode(snapshot: ServerSnapshot) -> String {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(Snapshot(snapshot)));
    let mut out = String::new();
    // Writing to a String cannot fail.
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("writing to a String");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_is_written_under_its_name() {
        let mut snapshot = ServerSnapshot::default();
        snapshot.connections = 3;
        snapshot.members = 2;
        snapshot.unflushed_bytes = 17;
        snapshot.stats.logins = 5;
        snapshot.stats.deliveries = 1 << 40;
        let text = encode(snapshot);
        for line in [
            "# TYPE chat_connections_open gauge",
            "chat_connections_open 3",
            "chat_members 2",
            "chat_output_unflushed_bytes 17",
            "chat_room_backlog_bytes 0",
            "# TYPE chat_logins_total counter",
            "chat_logins_total 5",
            "chat_messages_in_total 0",
            "chat_deliveries_out_total 1099511627776",
            "chat_received_bytes_total 0",
            "chat_written_bytes_total 0",
            "chat_slow_consumers_total 0",
            "chat_keepalive_timeouts_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        for reason in HubCloseReason::ALL {
            let line = format!("chat_closes_total{{reason=\"{}\"}} 0", reason.as_str());
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
