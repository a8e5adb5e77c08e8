//! Latency percentiles over every delivery: a thin wrapper over
//! HdrHistogram.
//!
//! Values are nanoseconds, kept to three significant digits (0.1%), from
//! 1 ns to one hour; recording never allocates. Each receiver keeps its own
//! histogram and they are merged at the end. The maximum is exact.

use hdrhistogram::Histogram as Hdr;

/// The largest latency recorded as itself; longer ones are clamped to it.
const HIGHEST_NS: u64 = 3_600_000_000_000;

/// Counts of latencies, in nanoseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    hdr: Hdr<u64>,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            hdr: Hdr::new_with_bounds(1, HIGHEST_NS, 3).expect("valid HdrHistogram bounds"),
            max: 0,
        }
    }

    /// Records one latency.
    pub fn record(&mut self, v: u64) {
        self.hdr.saturating_record(v.max(1));
        self.max = self.max.max(v);
    }

    /// Adds everything `other` recorded.
    pub fn merge(&mut self, other: &Histogram) {
        // Both have the same bounds, so adding cannot fail.
        self.hdr
            .add(&other.hdr)
            .expect("histograms with equal bounds");
        self.max = self.max.max(other.max);
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.hdr.len()
    }

    /// The largest latency recorded, exactly.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean latency.
    pub fn mean(&self) -> u64 {
        self.hdr.mean() as u64
    }

    /// The latency at quantile `q` (0.5 for the median, 0.99 for p99).
    pub fn quantile(&self, q: f64) -> u64 {
        self.hdr.value_at_quantile(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_a_tenth_of_a_percent() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 100_000);
        for (q, exact) in [
            (0.5, 50_000_000u64),
            (0.99, 99_000_000),
            (0.999, 99_900_000),
        ] {
            let got = h.quantile(q);
            let error = got.abs_diff(exact) as f64 / exact as f64;
            assert!(error <= 0.001, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.max(), 100_000_000);
    }

    #[test]
    fn merged_histograms_count_everything() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(10);
        b.record(20);
        b.record(5_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.max(), 5_000_000);
        assert_eq!(a.quantile(0.0), 10);
    }
}
