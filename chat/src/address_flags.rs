//! `chat serve`'s flags for the per-address limits: how much one source
//! address may take (connections open, new connections and login attempts
//! a minute) and which addresses are exempt. Defaults are the core's
//! ([`AddressLimits::default`]); the hub applies them (IPv6 counted per
//! /64). These flags only fill in the configuration.

use std::time::Duration;

use chat_proto::{AddressLimits, AddressRange, Allowance};
use clap::Args;

/// What `--exempt` takes to exempt nothing.
const NONE: &str = "none";

/// Per-address limits, as flags.
#[derive(Debug, Args)]
pub(crate) struct AddressArgs {
    /// Connections open at once from one source address (IPv6: one /64).
    /// Past it: err:too-many-connections, closed.
    #[arg(long, value_name = "N", default_value_t = AddressLimits::default().max_connections)]
    max_per_address: usize,
    /// New connections from one address a minute (a burst of N, then one
    /// every 60/N s). Past it: err:connection-rate, closed.
    #[arg(long, value_name = "N", default_value_t = default_per_minute(|l| l.connects))]
    connects_per_minute: u32,
    /// Login attempts (iam:) from one address a minute (a burst of N, then
    /// one every 60/N s). Past it: err:retry-later, not fatal.
    #[arg(long, value_name = "N", default_value_t = default_per_minute(|l| l.logins))]
    logins_per_minute: u32,
    /// An address range exempt from these limits, as ADDR/BITS or ADDR;
    /// repeat for more. Given, the list replaces the default (loopback:
    /// 127.0.0.0/8 and ::1); `--exempt none` exempts nothing.
    #[arg(long, value_name = "CIDR", value_parser = parse_exempt)]
    exempt: Vec<Exempt>,
}

/// One `--exempt` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exempt {
    /// `none`: no range (the list is then whatever else is given).
    Nothing,
    Range(AddressRange),
}

fn parse_exempt(s: &str) -> Result<Exempt, String> {
    if s.eq_ignore_ascii_case(NONE) {
        return Ok(Exempt::Nothing);
    }
    s.parse().map(Exempt::Range)
}

/// The core's default allowance `pick` chooses, in events a minute. The
/// flags speak per minute; a test checks that the core's defaults are so.
fn default_per_minute(pick: impl Fn(&AddressLimits) -> Allowance) -> u32 {
    pick(&AddressLimits::default()).count
}

const MINUTE: Duration = Duration::from_secs(60);

impl AddressArgs {
    /// Writes the flags into `limits`, leaving the fields they do not
    /// cover (`tracked`) as they are.
    pub(crate) fn apply(&self, limits: &mut AddressLimits) {
        limits.max_connections = self.max_per_address;
        limits.connects = Allowance::new(self.connects_per_minute, MINUTE);
        limits.logins = Allowance::new(self.logins_per_minute, MINUTE);
        if !self.exempt.is_empty() {
            limits.exempt = self
                .exempt
                .iter()
                .filter_map(|e| match e {
                    Exempt::Nothing => None,
                    Exempt::Range(r) => Some(*r),
                })
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        addresses: AddressArgs,
    }

    fn limits(args: &[&str]) -> Result<AddressLimits, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))?;
        let mut limits = AddressLimits::default();
        cli.addresses.apply(&mut limits);
        Ok(limits)
    }

    #[test]
    fn without_flags_the_core_defaults_hold() {
        let core = AddressLimits::default();
        // The flags count per minute: so must the core's defaults.
        assert_eq!(core.connects.per, MINUTE);
        assert_eq!(core.logins.per, MINUTE);
        assert_eq!(limits(&[]).unwrap(), core);
    }

    #[test]
    fn flags_set_each_limit() {
        let l = limits(&[
            "--max-per-address",
            "3",
            "--connects-per-minute",
            "10",
            "--logins-per-minute",
            "5",
        ])
        .unwrap();
        assert_eq!(l.max_connections, 3);
        assert_eq!(l.connects, Allowance::new(10, MINUTE));
        assert_eq!(l.logins, Allowance::new(5, MINUTE));
        assert_eq!(l.exempt, AddressRange::loopback());
    }

    #[test]
    fn exempt_replaces_the_default_and_none_empties_it() {
        let l = limits(&["--exempt", "10.0.0.0/8", "--exempt", "2001:db8::/32"]).unwrap();
        assert_eq!(
            l.exempt,
            [
                "10.0.0.0/8".parse::<AddressRange>().unwrap(),
                "2001:db8::/32".parse().unwrap()
            ]
        );
        assert!(!l.is_exempt("127.0.0.1".parse().unwrap()));
        assert!(l.is_exempt("10.9.8.7".parse().unwrap()));
        let none = limits(&["--exempt", "none"]).unwrap();
        assert!(none.exempt.is_empty());
        assert!(!none.is_exempt("127.0.0.1".parse().unwrap()));
        assert!(limits(&["--exempt", "10.0.0.0/33"]).is_err());
        assert!(limits(&["--exempt", "localhost"]).is_err());
    }
}
