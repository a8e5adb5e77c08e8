//! Loss and reorder bookkeeping.
//!
//! Every receiver keeps a [`SeqTracker`]: for each sender, the sequence
//! number it expects next and how many of that sender's messages it got.
//! A **reorder** is a delivery whose sequence number is not exactly one
//! more than the previous one seen from that sender (the first expected is
//! 0), so a gap counts as a reorder as well as a loss. At the end the
//! trackers are merged into [`Totals`] per sender, against the number of
//! deliveries expected from each sender: `messages × receivers` in one room
//! where everyone hears everyone, or per sender ([`Totals::per_sender`])
//! when senders have audiences of their own (rooms, or IRC, where nobody
//! hears their own messages).

/// What one receiver saw from every sender.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    next: Vec<u32>,
    received: Vec<u64>,
    reorders: Vec<u64>,
}

impl SeqTracker {
    /// A tracker for `senders` senders.
    pub fn new(senders: usize) -> Self {
        SeqTracker {
            next: vec![0; senders],
            received: vec![0; senders],
            reorders: vec![0; senders],
        }
    }

    /// Records a delivery of `seq` from `sender`; returns whether it was in
    /// order. `sender` must be below the number of senders.
    #[inline]
    pub fn record(&mut self, sender: usize, seq: u32) -> bool {
        let in_order = self.next[sender] == seq;
        if !in_order {
            self.reorders[sender] += 1;
        }
        self.next[sender] = seq.wrapping_add(1);
        self.received[sender] += 1;
        in_order
    }

    /// Deliveries recorded, from every sender.
    pub fn received(&self) -> u64 {
        self.received.iter().sum()
    }
}

/// Per-sender results over every receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Deliveries expected from each sender.
    pub expected_per_sender: Vec<u64>,
    /// Deliveries received from each sender.
    pub received: Vec<u64>,
    /// Reorders seen by any receiver, per sender.
    pub reorders: Vec<u64>,
}

impl Totals {
    /// Empty totals for `senders` senders, each expected to reach
    /// `receivers` receivers with `messages` messages.
    pub fn new(senders: usize, messages: u32, receivers: usize) -> Self {
        Totals::per_sender(vec![u64::from(messages) * receivers as u64; senders])
    }

    /// Empty totals expecting `expected[i]` deliveries from sender `i`.
    pub fn per_sender(expected: Vec<u64>) -> Self {
        let senders = expected.len();
        Totals {
            expected_per_sender: expected,
            received: vec![0; senders],
            reorders: vec![0; senders],
        }
    }

    /// Adds one receiver's tracker.
    pub fn add(&mut self, tracker: &SeqTracker) {
        for (total, n) in self.received.iter_mut().zip(&tracker.received) {
            *total += n;
        }
        for (total, n) in self.reorders.iter_mut().zip(&tracker.reorders) {
            *total += n;
        }
    }

    /// Deliveries expected in all.
    pub fn expected(&self) -> u64 {
        self.expected_per_sender.iter().sum()
    }

    /// Deliveries received in all.
    pub fn received_total(&self) -> u64 {
        self.received.iter().sum()
    }

    /// Deliveries missing, per sender.
    pub fn losses(&self) -> impl Iterator<Item = u64> + '_ {
        self.received
            .iter()
            .zip(&self.expected_per_sender)
            .map(|(r, e)| e.saturating_sub(*r))
    }

    /// Deliveries missing in all.
    pub fn losses_total(&self) -> u64 {
        self.losses().sum()
    }

    /// Deliveries beyond the expected number (duplicates), in all.
    pub fn extra_total(&self) -> u64 {
        self.received
            .iter()
            .zip(&self.expected_per_sender)
            .map(|(r, e)| r.saturating_sub(*e))
            .sum()
    }

    /// Reorders in all.
    pub fn reorders_total(&self) -> u64 {
        self.reorders.iter().sum()
    }

    /// `(sender, losses, reorders)` for every sender with either, at most
    /// `limit` of them, for the summary.
    pub fn offenders(&self, limit: usize) -> Vec<(usize, u64, u64)> {
        self.losses()
            .zip(&self.reorders)
            .enumerate()
            .filter(|(_, (l, r))| *l > 0 || **r > 0)
            .map(|(i, (l, r))| (i, l, *r))
            .take(limit)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_deliveries_are_clean() {
        let mut t = SeqTracker::new(2);
        for seq in 0..5 {
            assert!(t.record(0, seq));
            assert!(t.record(1, seq));
        }
        let mut totals = Totals::new(2, 5, 1);
        totals.add(&t);
        assert_eq!(totals.expected(), 10);
        assert_eq!(totals.received_total(), 10);
        assert_eq!(totals.losses_total(), 0);
        assert_eq!(totals.reorders_total(), 0);
        assert!(totals.offenders(10).is_empty());
    }

    #[test]
    fn a_swap_is_two_reorders_and_no_loss() {
        let mut t = SeqTracker::new(1);
        let seen: Vec<bool> = [0, 1, 3, 2, 4].iter().map(|&s| t.record(0, s)).collect();
        // 3 is not 1+1; 2 is not 3+1; 4 is not 2+1.
        assert_eq!(seen, [true, true, false, false, false]);
        let mut totals = Totals::new(1, 5, 1);
        totals.add(&t);
        assert_eq!(totals.losses_total(), 0);
        assert_eq!(totals.reorders_total(), 3);
    }

    #[test]
    fn a_gap_is_a_loss_and_a_reorder() {
        let mut t = SeqTracker::new(1);
        for seq in [0, 1, 3, 4] {
            t.record(0, seq);
        }
        let mut totals = Totals::new(1, 5, 1);
        totals.add(&t);
        assert_eq!(totals.losses_total(), 1);
        assert_eq!(totals.reorders_total(), 1);
        assert_eq!(totals.offenders(10), [(0, 1, 1)]);
    }

    #[test]
    fn a_late_start_is_a_reorder() {
        let mut t = SeqTracker::new(1);
        assert!(!t.record(0, 1));
    }

    #[test]
    fn totals_add_up_receivers_per_sender() {
        // Three receivers, two senders, four messages each; receiver 2
        // misses sender 1's last message; one duplicate from sender 0.
        let mut totals = Totals::new(2, 4, 3);
        for r in 0..3 {
            let mut t = SeqTracker::new(2);
            for seq in 0..4 {
                t.record(0, seq);
                if !(r == 2 && seq == 3) {
                    t.record(1, seq);
                }
            }
            if r == 0 {
                t.record(0, 3);
            }
            totals.add(&t);
        }
        assert_eq!(totals.expected(), 24);
        assert_eq!(totals.received, [13, 11]);
        assert_eq!(totals.losses_total(), 1);
        assert_eq!(totals.extra_total(), 1);
        assert_eq!(totals.reorders_total(), 1);
        assert_eq!(totals.offenders(10), [(0, 0, 1), (1, 1, 0)]);
    }

    #[test]
    fn senders_may_expect_different_audiences() {
        // Sender 0 speaks to two others, sender 1 to one; 3 messages each.
        let mut totals = Totals::per_sender(vec![6, 3]);
        let mut t = SeqTracker::new(2);
        for seq in 0..3 {
            t.record(0, seq);
            t.record(1, seq);
        }
        totals.add(&t);
        let mut t = SeqTracker::new(2);
        for seq in 0..2 {
            t.record(0, seq);
        }
        totals.add(&t);
        assert_eq!(totals.expected(), 9);
        assert_eq!(totals.received_total(), 8);
        assert_eq!(totals.losses_total(), 1);
        assert_eq!(totals.extra_total(), 0);
        assert_eq!(totals.offenders(10), [(0, 1, 0)]);
    }
}
