//! What the hub remembers about source addresses and names, so that one
//! source cannot take the server and a password cannot be guessed fast.
//!
//! Per source address (IPv6 per /64): connections open now, a bucket of new
//! connections, a bucket of login attempts, and failed logins in a row. Per
//! name: failed logins in a row. After the n-th failure in a row the next
//! attempt waits `first_delay × 2^(n-1)`, at most `max_delay`, whether the
//! name is registered or not: the hub only sees refusals, never why.
//!
//! Memory is bounded: each map holds at most its `tracked` entries (an
//! address with connections open always stays); beyond it the entries seen
//! longest ago are forgotten, an eighth at a time, so the cost of the sweep
//! spreads over many insertions. Exempt addresses are not remembered at all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::rate::Bucket;
use crate::config::{AddressLimits, FailedLogins};
use crate::keepalive::after;
use crate::names::NameKey;

/// An address as counted: IPv4 whole, IPv6 by its /64 (an IPv4 address
/// mapped into IPv6 counts as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum AddrKey {
    V4(u32),
    V6(u64),
}

impl AddrKey {
    pub(super) fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(v4) => AddrKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(u32::from(v4)),
                None => AddrKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Failed logins in a row, and when the last one was.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// When the next attempt may go; `None` once the failures are
    /// forgotten.
    fn next_allowed(&self, policy: &FailedLogins, now: Instant) -> Option<Instant> {
        if now.saturating_duration_since(self.last) >= policy.forget_after {
            return None;
        }
        Some(after(self.last, delay(self.count, policy)))
    }

    fn record(failures: &mut Option<Failures>, policy: &FailedLogins, now: Instant) {
        let count = match failures {
            Some(f) if f.next_allowed(policy, now).is_some() => f.count.saturating_add(1),
            _ => 1,
        };
        *failures = Some(Failures { count, last: now });
    }
}

/// The wait after `count` failures in a row.
fn delay(count: u32, policy: &FailedLogins) -> Duration {
    let doublings = count.saturating_sub(1).min(31);
    policy
        .first_delay
        .checked_mul(1 << doublings)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay)
}

#[derive(Debug)]
struct AddressEntry {
    /// Connections open from it now.
    conns: u32,
    connects: Bucket,
    logins: Bucket,
    failures: Option<Failures>,
    seen: Instant,
}

/// Whether a new connection from an address may stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// Yes; it is counted until [`Guard::release`].
    Counted,
    /// Yes, and it is not counted (exempt, or no address known).
    Uncounted,
    /// No: the address has `max_connections` open.
    TooMany,
    /// No: the address connected too often lately.
    TooFast,
}

/// Whether a login attempt may go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Yes (a login attempt was counted).
    Go,
    /// In this long: hold the attempt.
    Hold(Duration),
    /// Not for this long: too long to hold; the client must retry.
    Later(Duration),
}

/// The bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Guard {
    addresses: HashMap<AddrKey, AddressEntry>,
    names: HashMap<NameKey, Failures>,
}

impl Guard {
    /// Addresses remembered now (for tests and metrics).
    pub(super) fn addresses(&self) -> usize {
        self.addresses.len()
    }

    /// Names with failed logins remembered now.
    pub(super) fn names(&self) -> usize {
        self.names.len()
    }

    /// A new connection from `ip`.
    pub(super) fn admit(
        &mut self,
        limits: &AddressLimits,
        ip: Option<IpAddr>,
        now: Instant,
    ) -> Admission {
        let Some(ip) = ip.filter(|ip| !limits.is_exempt(*ip)) else {
            return Admission::Uncounted;
        };
        let entry = self.entry(limits, AddrKey::of(ip), now);
        if !entry.connects.take(&limits.connects, now) {
            return Admission::TooFast;
        }
        if entry.conns as usize >= limits.max_connections {
            return Admission::TooMany;
        }
        entry.conns += 1;
        Admission::Counted
    }

    /// A counted connection from `ip` is gone.
    pub(super) fn release(&mut self, ip: IpAddr, now: Instant) {
        if let Some(entry) = self.addresses.get_mut(&AddrKey::of(ip)) {
            entry.conns = entry.conns.saturating_sub(1);
            entry.seen = now;
        }
    }

    /// A login attempt for `name` from `ip`: whether it may go now. Only a
    /// [`Gate::Go`] counts against the address's login allowance.
    pub(super) fn login(
        &mut self,
        limits: &AddressLimits,
        policy: &FailedLogins,
        ip: Option<IpAddr>,
        name: &NameKey,
        now: Instant,
    ) -> Gate {
        let mut ready = now;
        if let Some(f) = self.names.get(name) {
            ready = ready.max(f.next_allowed(policy, now).unwrap_or(now));
        }
        let ip = ip.filter(|ip| !limits.is_exempt(*ip));
        if let Some(ip) = ip {
            let entry = self.entry(limits, AddrKey::of(ip), now);
            if let Some(f) = &entry.failures {
                ready = ready.max(f.next_allowed(policy, now).unwrap_or(now));
            }
            let token = after(now, entry.logins.wait(&limits.logins, now));
            ready = ready.max(token);
        }
        let wait = ready.saturating_duration_since(now);
        if wait.is_zero() {
            if let Some(ip) = ip {
                let entry = self.entry(limits, AddrKey::of(ip), now);
                entry.logins.take(&limits.logins, now);
            }
            Gate::Go
        } else if wait <= policy.hold {
            Gate::Hold(wait)
        } else {
            Gate::Later(wait)
        }
    }

    /// A login for `name` from `ip` was refused.
    pub(super) fn failed(
        &mut self,
        limits: &AddressLimits,
        policy: &FailedLogins,
        ip: Option<IpAddr>,
        name: &NameKey,
        now: Instant,
    ) {
        if !self.names.contains_key(name) && self.names.len() >= policy.tracked {
            forget_oldest(&mut self.names, policy.tracked, |f| (true, f.last));
        }
        let mut failures = self.names.get(name).copied();
        Failures::record(&mut failures, policy, now);
        if let Some(f) = failures {
            self.names.insert(name.clone(), f);
        }
        if let Some(ip) = ip.filter(|ip| !limits.is_exempt(*ip)) {
            let entry = self.entry(limits, AddrKey::of(ip), now);
            Failures::record(&mut entry.failures, policy, now);
        }
    }

    /// A login for `name` from `ip` succeeded: their failures are
    /// forgotten.
    pub(super) fn succeeded(&mut self, ip: Option<IpAddr>, name: &NameKey) {
        self.names.remove(name);
        if let Some(entry) = ip.and_then(|ip| self.addresses.get_mut(&AddrKey::of(ip))) {
            entry.failures = None;
        }
    }

    /// The entry for `key`, made if need be (forgetting the oldest idle
    /// ones when the map is full).
    fn entry(&mut self, limits: &AddressLimits, key: AddrKey, now: Instant) -> &mut AddressEntry {
        if !self.addresses.contains_key(&key) && self.addresses.len() >= limits.tracked {
            forget_oldest(&mut self.addresses, limits.tracked, |e| {
                (e.conns == 0, e.seen)
            });
        }
        let entry = self.addresses.entry(key).or_insert_with(|| AddressEntry {
            conns: 0,
            connects: Bucket::new(&limits.connects, now),
            logins: Bucket::new(&limits.logins, now),
            failures: None,
            seen: now,
        });
        entry.seen = now;
        entry
    }
}

/// Forgets the oldest eighth of `map` (at least one entry) among those
/// `age` says may go (`.0`), by when they were last seen (`.1`).
fn forget_oldest<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    tracked: usize,
    age: impl Fn(&V) -> (bool, Instant),
) {
    let mut candidates: Vec<(Instant, K)> = map
        .iter()
        .filter_map(|(k, v)| {
            let (may_go, seen) = age(v);
            may_go.then(|| (seen, k.clone()))
        })
        .collect();
    let n = (tracked / 8).max(1).min(candidates.len());
    if n == 0 {
        return;
    }
    if n < candidates.len() {
        candidates.select_nth_unstable_by_key(n - 1, |(seen, _)| *seen);
    }
    for (_, key) in candidates.drain(..n) {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Allowance;

    fn limits() -> AddressLimits {
        AddressLimits {
            exempt: Vec::new(),
            tracked: 16,
            ..AddressLimits::default()
        }
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddrKey::of(a), AddrKey::of(b));
        assert_ne!(AddrKey::of(a), AddrKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(AddrKey::of(mapped), AddrKey::of(ip(1).unwrap()));
    }

    #[test]
    fn connections_per_address_are_bounded_and_released() {
        let mut limits = limits();
        limits.max_connections = 2;
        let now = Instant::now();
        let mut g = Guard::default();
        assert_eq!(g.admit(&limits, ip(1), now), Admission::Counted);
        assert_eq!(g.admit(&limits, ip(1), now), Admission::Counted);
        assert_eq!(g.admit(&limits, ip(1), now), Admission::TooMany);
        assert_eq!(g.admit(&limits, ip(2), now), Admission::Counted);
        g.release(ip(1).unwrap(), now);
        assert_eq!(g.admit(&limits, ip(1), now), Admission::Counted);
        assert_eq!(g.admit(&limits, None, now), Admission::Uncounted);
        let lo = Some(IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            g.admit(&AddressLimits::default(), lo, now),
            Admission::Uncounted
        );
    }

    #[test]
    fn connects_per_interval_are_bounded() {
        let mut limits = limits();
        limits.connects = Allowance::new(3, Duration::from_secs(60));
        let now = Instant::now();
        let mut g = Guard::default();
        for _ in 0..3 {
            assert_eq!(g.admit(&limits, ip(1), now), Admission::Counted);
            g.release(ip(1).unwrap(), now);
        }
        assert_eq!(g.admit(&limits, ip(1), now), Admission::TooFast);
        let later = now + Duration::from_secs(20);
        assert_eq!(g.admit(&limits, ip(1), later), Admission::Counted);
    }

    #[test]
    fn failures_double_the_wait_up_to_the_most() {
        let policy = FailedLogins::default();
        let waits: Vec<u64> = (1..=9).map(|n| delay(n, &policy).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(delay(u32::MAX, &policy), policy.max_delay);
    }

    #[test]
    fn a_name_with_failures_waits_then_is_told_to_retry_later() {
        let (limits, policy) = (limits(), FailedLogins::default());
        let name = NameKey::of("alice");
        let mut g = Guard::default();
        let now = Instant::now();
        assert_eq!(g.login(&limits, &policy, ip(1), &name, now), Gate::Go);
        g.failed(&limits, &policy, ip(1), &name, now);
        // From another address too: the name's failures count.
        assert_eq!(
            g.login(&limits, &policy, ip(2), &name, now),
            Gate::Hold(Duration::from_secs(1))
        );
        for _ in 0..5 {
            g.failed(&limits, &policy, ip(1), &name, now);
        }
        assert_eq!(
            g.login(&limits, &policy, ip(2), &name, now),
            Gate::Later(Duration::from_secs(32))
        );
        let later = now + Duration::from_secs(32);
        assert_eq!(g.login(&limits, &policy, ip(2), &name, later), Gate::Go);
        g.succeeded(ip(2), &name);
        assert_eq!(g.names(), 0);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_while() {
        let (limits, policy) = (limits(), FailedLogins::default());
        let name = NameKey::of("bob");
        let mut g = Guard::default();
        let now = Instant::now();
        for _ in 0..10 {
            g.failed(&limits, &policy, None, &name, now);
        }
        let quiet = now + policy.forget_after;
        assert_eq!(g.login(&limits, &policy, None, &name, quiet), Gate::Go);
        g.failed(&limits, &policy, None, &name, quiet);
        assert_eq!(
            g.login(&limits, &policy, None, &name, quiet),
            Gate::Hold(policy.first_delay)
        );
    }

    #[test]
    fn an_address_with_failures_waits_whatever_the_name() {
        let (limits, policy) = (limits(), FailedLogins::default());
        let mut g = Guard::default();
        let now = Instant::now();
        for i in 0..8 {
            g.failed(&limits, &policy, ip(7), &NameKey::of(&format!("u{i}")), now);
        }
        let fresh = NameKey::of("fresh");
        assert_eq!(
            g.login(&limits, &policy, ip(7), &fresh, now),
            Gate::Later(Duration::from_secs(60))
        );
        assert_eq!(g.login(&limits, &policy, ip(8), &fresh, now), Gate::Go);
    }

    #[test]
    fn login_attempts_per_address_are_bounded() {
        let mut limits = limits();
        limits.logins = Allowance::new(2, Duration::from_secs(60));
        let policy = FailedLogins::default();
        let mut g = Guard::default();
        let now = Instant::now();
        let name = NameKey::of("carol");
        assert_eq!(g.login(&limits, &policy, ip(1), &name, now), Gate::Go);
        assert_eq!(g.login(&limits, &policy, ip(1), &name, now), Gate::Go);
        assert_eq!(
            g.login(&limits, &policy, ip(1), &name, now),
            Gate::Later(Duration::from_secs(30))
        );
        // Loopback is exempt by default.
        let lo = Some(IpAddr::from([127, 0, 0, 1]));
        let d = AddressLimits::default();
        for _ in 0..100 {
            assert_eq!(g.login(&d, &policy, lo, &name, now), Gate::Go);
        }
    }

    #[test]
    fn memory_stays_bounded_and_open_addresses_stay() {
        let limits = limits();
        let policy = FailedLogins {
            tracked: 16,
            ..FailedLogins::default()
        };
        let mut g = Guard::default();
        let now = Instant::now();
        assert_eq!(g.admit(&limits, ip(0), now), Admission::Counted);
        for i in 1..=200u8 {
            let t = now + Duration::from_millis(u64::from(i));
            g.admit(&limits, ip(i), t);
            g.release(ip(i).unwrap(), t);
            g.failed(&limits, &policy, None, &NameKey::of(&format!("n{i}")), t);
            assert!(g.addresses() <= 16, "{} addresses", g.addresses());
            assert!(g.names() <= 16, "{} names", g.names());
        }
        // The address with a connection open was never forgotten.
        assert_eq!(
            g.addresses.get(&AddrKey::of(ip(0).unwrap())).unwrap().conns,
            1
        );
        // The newest name is remembered.
        assert!(g.names.contains_key(&NameKey::of("n200")));
    }
}
