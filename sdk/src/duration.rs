//! Durations as producers write them in configs: `"90s"`, `"20m"`, `"5h"`, `"3d"`, `"1h30m"`.

use std::fmt;
use std::str::FromStr;

/// A span of time with millisecond precision, written in configs as a number followed by a
/// unit (`s`, `m`, `h`, `d`), optionally several in a row (`"1h30m"`).
///
/// ```
/// use funnel_sdk::Duration;
/// let d: Duration = "1h30m".parse().unwrap();
/// assert_eq!(d.as_millis(), 90 * 60 * 1000);
/// assert_eq!(d.to_string(), "1h30m");
/// assert!("20 minutes".parse::<Duration>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Duration {
    /// A duration of `ms` milliseconds.
    ///
    /// ```
    /// assert_eq!(funnel_sdk::Duration::from_millis(1500).to_string(), "1s500ms");
    /// ```
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms)
    }
    /// A duration of `s` seconds.
    ///
    /// ```
    /// assert_eq!(funnel_sdk::Duration::from_secs(90).to_string(), "1m30s");
    /// ```
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * 1000)
    }
    /// A duration of `m` minutes.
    ///
    /// ```
    /// assert_eq!(funnel_sdk::Duration::from_mins(20), "20m".parse().unwrap());
    /// ```
    pub const fn from_mins(m: u64) -> Self {
        Duration(m * 60_000)
    }
    /// A duration of `h` hours.
    ///
    /// ```
    /// assert_eq!(funnel_sdk::Duration::from_hours(72).to_string(), "3d");
    /// ```
    pub const fn from_hours(h: u64) -> Self {
        Duration(h * 3_600_000)
    }
    /// The duration in milliseconds.
    ///
    /// ```
    /// assert_eq!(funnel_sdk::Duration::from_mins(1).as_millis(), 60_000);
    /// ```
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// The sum, saturating instead of overflowing.
    ///
    /// ```
    /// use funnel_sdk::Duration;
    /// assert_eq!(Duration::from_mins(20).saturating_add(Duration::from_hours(5)).to_string(), "5h20m");
    /// assert_eq!(Duration::from_millis(u64::MAX).saturating_add(Duration::from_secs(1)).as_millis(), u64::MAX);
    /// ```
    pub const fn saturating_add(self, other: Duration) -> Duration {
        Duration(self.0.saturating_add(other.0))
    }
}

/// Why a duration string was refused; its message says how to write one.
///
/// ```
/// let err = "20".parse::<funnel_sdk::Duration>().unwrap_err();
/// assert!(err.to_string().contains("like \"20m\""));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: use a whole number followed by s, m, h or d, like \"20m\", \"5h\" or \"1h30m\"",
            self.0
        )
    }
}

impl std::error::Error for DurationError {}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || DurationError(text.to_string());
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut saw_unit = false;
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit_ms: u64 = match c {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => return Err(err()),
            };
            let n: u64 = digits.parse().map_err(|_| err())?;
            digits.clear();
            total = n.checked_mul(unit_ms).and_then(|ms| total.checked_add(ms)).ok_or_else(err)?;
            saw_unit = true;
        }
        if !digits.is_empty() || !saw_unit {
            return Err(err());
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    /// Compound form, largest unit first: `20m`, `5h`, `4h59m`, `19m59s`, `3d`, `1500ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return write!(f, "0s");
        }
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        if ms > 0 {
            write!(f, "{ms}ms")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_combinations() {
        assert_eq!("90s".parse::<Duration>().unwrap().as_millis(), 90_000);
        assert_eq!("20m".parse::<Duration>().unwrap(), Duration::from_mins(20));
        assert_eq!("5h".parse::<Duration>().unwrap(), Duration::from_hours(5));
        assert_eq!("3d".parse::<Duration>().unwrap(), Duration::from_hours(72));
        assert_eq!("1440m".parse::<Duration>().unwrap(), Duration::from_hours(24));
        assert_eq!("4h59m".parse::<Duration>().unwrap(), Duration::from_mins(299));
        assert_eq!("19m59s".parse::<Duration>().unwrap().as_millis(), 1_199_000);
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in ["", "20", "m", "20 minutes", "-5m", "5x", "1.5h", "99999999999999999999d"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should be refused");
        }
        let msg = "20".parse::<Duration>().unwrap_err().to_string();
        assert!(msg.contains("\"20\"") && msg.contains("20m"), "{msg}");
    }

    #[test]
    fn displays_compound_units() {
        assert_eq!(Duration::from_mins(20).to_string(), "20m");
        assert_eq!(Duration::from_mins(90).to_string(), "1h30m");
        assert_eq!(Duration::from_mins(299).to_string(), "4h59m");
        assert_eq!(Duration::from_hours(48).to_string(), "2d");
        assert_eq!(Duration::from_millis(1500).to_string(), "1s500ms");
    }
}
