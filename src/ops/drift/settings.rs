//! The drift sweep's settings (flags and environment variables of `acr-attach serve`, part of
//! [`super::super::OpsSettings`]).
use std::fmt;
use std::time::Duration;

use crate::duration::{fmt_duration, parse_duration};

/// How often the sweep runs: a duration, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepInterval(pub Option<Duration>);

impl SweepInterval {
    pub const OFF: SweepInterval = SweepInterval(None);

    /// `off`, or a duration as [`parse_duration`] reads it (`30m`, `1h`, `1d`).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("off") {
            Ok(Self::OFF)
        } else {
            parse_duration(s).map(|d| SweepInterval(Some(d)))
        }
    }
}

impl fmt::Display for SweepInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => f.write_str(&fmt_duration(d)),
            None => f.write_str("off"),
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct DriftSettings {
    /// Re-check the attachments acr-attach made this often, and mark those Azure no longer
    /// shows `drifted` (a `verify` job through the queue: one sweep per interval, whatever the
    /// number of replicas); `off` disables.
    #[arg(long, env = "ACR_ATTACH_VERIFY_INTERVAL", value_parser = SweepInterval::parse, default_value = "1h")]
    pub verify_interval: SweepInterval,
    /// Re-attach drifted pairs automatically, each through a normal attach job (not pairs whose
    /// cluster or registry is gone).
    #[arg(long, env = "ACR_ATTACH_REPAIR_DRIFT", num_args = 0..=1, default_missing_value = "true",
        default_value = "false", value_parser = clap::builder::BoolishValueParser::new())]
    pub repair_drift: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        drift: DriftSettings,
    }

    fn parse(args: &[&str]) -> DriftSettings {
        Cli::try_parse_from([&["x"], args].concat()).unwrap().drift
    }

    #[test]
    fn the_sweep_is_hourly_and_repairs_only_when_asked() {
        let d = parse(&[]);
        assert_eq!(d.verify_interval, SweepInterval(Some(Duration::from_secs(3600))));
        assert!(!d.repair_drift);
        let d = parse(&["--verify-interval", "off", "--repair-drift"]);
        assert_eq!(d.verify_interval, SweepInterval::OFF);
        assert!(d.repair_drift);
        assert!(!parse(&["--repair-drift=false"]).repair_drift);
        assert_eq!(parse(&["--verify-interval", "15m"]).verify_interval.to_string(), "15m");
        assert!(Cli::try_parse_from(["x", "--verify-interval", "0s"]).is_err());
    }
}
