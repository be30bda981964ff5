//! Send windows (quiet hours): [`TimeZone`], an IANA zone name checked where it enters, and
//! [`SendWindow`], the local hours and week days a binding lets recovery messages go out, with
//! [`SendWindow::opens_at`], the one rule delivery, the plugin capability `send-window-opens`
//! and `funnel simulate` all ask: the earliest instant at or after a given one inside the
//! window.
//!
//! Rules (documented for producers in the README):
//! - `start` and `end` are local `HH:MM` times (`end` may be `24:00`); `start == end` is refused.
//! - `end` earlier than `start` means the window runs overnight (`22:00`–`06:00`): it opens on
//!   each listed day and closes the next morning.
//! - `days` are the days the window *opens* on (`mon`…`sun`), all seven when absent.
//! - Local times that do not exist (a DST gap) open at the first instant after the gap; local
//!   times that happen twice (the hour repeated in autumn) open at the first of them.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone as _, Weekday};
use serde::{Deserialize, Serialize};

/// The longest zone name accepted (the longest IANA name is 32 bytes).
const MAX_ZONE_BYTES: usize = 64;

/// An IANA time zone (`America/Sao_Paulo`), known to the tz database this binary carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(chrono_tz::Tz);

/// Why a string is not a time zone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone name like America/Sao_Paulo or Europe/Warsaw")]
pub struct TimeZoneError(String);

impl TimeZone {
    /// Parse an IANA name (exact spelling, as the tz database has it; `UTC` works too).
    pub fn parse(name: &str) -> Result<TimeZone, TimeZoneError> {
        if name.len() > MAX_ZONE_BYTES {
            return Err(TimeZoneError(name.chars().take(MAX_ZONE_BYTES).collect()));
        }
        name.parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| TimeZoneError(name.to_string()))
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// `at_ms` as local time in this zone, to the minute: `2026-01-02 08:00 (America/Sao_Paulo)`.
    pub fn local_text(&self, at_ms: i64) -> String {
        match self.0.timestamp_millis_opt(at_ms).single() {
            Some(local) => format!("{} ({})", local.format("%Y-%m-%d %H:%M %a"), self.name()),
            None => format!("{at_ms} ms"),
        }
    }
}

impl TryFrom<String> for TimeZone {
    type Error = TimeZoneError;
    fn try_from(name: String) -> Result<Self, TimeZoneError> {
        TimeZone::parse(&name)
    }
}

impl From<TimeZone> for String {
    fn from(zone: TimeZone) -> String {
        zone.name().to_string()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A send window as it is stored and shown: `{"start": "08:00", "end": "21:00", "days":
/// ["mon", …], "timezone": "America/Sao_Paulo"}`. Built only by [`SendWindow::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SendWindowSpec", into = "SendWindowSpec")]
pub struct SendWindow {
    /// Minutes after local midnight, 0..1440.
    start: u32,
    /// Minutes after local midnight, 0..=1440; not equal to `start`.
    end: u32,
    /// Opening days, Monday first, no repeats, at least one.
    days: Vec<Weekday>,
    timezone: TimeZone,
}

/// The JSON shape of a send window, before its values are checked (the API's schema).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendWindowSpec {
    /// Local opening time, `HH:MM`.
    #[schemars(regex(pattern = START_PATTERN))]
    pub start: String,
    /// Local closing time, `HH:MM` (`24:00` for midnight); before `start`: overnight. Not `start`.
    #[schemars(regex(pattern = END_PATTERN))]
    pub end: String,
    /// The days the window opens on (`mon` … `sun`); every day when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "day_names")]
    pub days: Option<Vec<String>>,
    /// IANA zone; a lead's own zone (`checkout.timezone`) wins over it.
    #[schemars(length(min = 1, max = MAX_ZONE_BYTES))]
    pub timezone: String,
}

/// Schema pattern of a window's `start`: what `parse_hhmm` accepts.
const START_PATTERN: &str = r"^([01][0-9]|2[0-3]):[0-5][0-9]$";
/// Schema pattern of a window's `end`: `start`'s, and `24:00`.
const END_PATTERN: &str = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";

fn day_names(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = DAY_NAMES.iter().map(|(name, _)| *name).collect();
    schemars::json_schema!({"type": "array", "minItems": 1, "maxItems": 7, "uniqueItems": true,
                            "items": {"type": "string", "enum": names}})
}

/// A problem with one field of a send window: its path under the window and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct WindowError {
    /// `start`, `end`, `days`, `days[2]` or `timezone`.
    pub path: String,
    pub message: String,
}

const DAY_NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

fn day_name(day: Weekday) -> &'static str {
    DAY_NAMES[day.num_days_from_monday() as usize].0
}

/// `HH:MM` as minutes after midnight; `24:00` only when `allow_midnight_end`.
fn parse_hhmm(text: &str, allow_midnight_end: bool) -> Result<u32, String> {
    let bad = || format!("{text:?} is not a local time HH:MM like 08:00 (00:00 to 23:59)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) if allow_midnight_end => Ok(1440),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl SendWindow {
    /// Check every value of `spec`; all problems at once, each naming its field.
    pub fn parse(spec: &SendWindowSpec) -> Result<SendWindow, Vec<WindowError>> {
        let mut errors = Vec::new();
        let mut err = |path: &str, message: String| errors.push(WindowError { path: path.into(), message });
        let start = parse_hhmm(&spec.start, false).map_err(|m| err("start", m)).ok();
        let end = parse_hhmm(&spec.end, true).map_err(|m| err("end", m)).ok();
        if let (Some(s), Some(e)) = (start, end)
            && (s == e || (s == 0 && e == 1440))
        {
            err("end", "must differ from start (a window open all day is no window: leave send_window out)".into());
        }
        let mut days = Vec::new();
        match &spec.days {
            None => days.extend(DAY_NAMES.iter().map(|(_, d)| *d)),
            Some(names) if names.is_empty() => err("days", "name at least one day (mon … sun), or leave it out".into()),
            Some(names) if names.len() > 7 => err("days", format!("at most 7 days (got {})", names.len())),
            Some(names) => {
                for (i, name) in names.iter().enumerate() {
                    match DAY_NAMES.iter().find(|(n, _)| *n == name.as_str()) {
                        None => {
                            err(&format!("days[{i}]"), format!("{name:?} is not a day: mon tue wed thu fri sat sun"))
                        }
                        Some((_, day)) if days.contains(day) => {
                            err(&format!("days[{i}]"), format!("{name} is listed twice"))
                        }
                        Some((_, day)) => days.push(*day),
                    }
                }
                days.sort_by_key(|d| d.num_days_from_monday());
            }
        }
        let timezone = TimeZone::parse(&spec.timezone).map_err(|e| err("timezone", e.to_string())).ok();
        match (start, end, timezone) {
            (Some(start), Some(end), Some(timezone)) if errors.is_empty() => {
                Ok(SendWindow { start, end, days, timezone })
            }
            _ => Err(errors),
        }
    }

    /// The window's zone (the binding's; a lead's own zone replaces it with [`Self::in_zone`]).
    pub fn timezone(&self) -> TimeZone {
        self.timezone
    }

    /// The same hours and days in another zone (the lead's).
    pub fn in_zone(&self, timezone: TimeZone) -> SendWindow {
        SendWindow { timezone, ..self.clone() }
    }

    /// The earliest instant at or after `at_ms` inside the window: `at_ms` itself when it is
    /// open then, else the window's next opening (always within 8 days: a day is listed).
    pub fn opens_at(&self, at_ms: i64) -> i64 {
        let tz = self.timezone.0;
        let Some(local) = tz.timestamp_millis_opt(at_ms).single() else { return at_ms };
        let today = local.date_naive();
        let mut next: Option<i64> = None;
        // Yesterday's overnight window may still be open; the next opening is at most a week on.
        for offset in -1..=8i64 {
            let Some(day) = today.checked_add_signed(chrono::TimeDelta::days(offset)) else { continue };
            if !self.days.contains(&day.weekday()) {
                continue;
            }
            let open = self.instant(day, self.start);
            let close_day = if self.end <= self.start { day.succ_opt().unwrap_or(day) } else { day };
            let close = self.instant(close_day, self.end);
            if open <= at_ms && at_ms < close {
                return at_ms;
            }
            if open > at_ms {
                next = Some(next.map_or(open, |n| n.min(open)));
            }
        }
        next.unwrap_or(at_ms)
    }

    /// The instant of local `minutes` after midnight of `day` (a DST gap: the first instant
    /// after it; a repeated hour: the first of the two).
    fn instant(&self, day: NaiveDate, minutes: u32) -> i64 {
        let tz = self.timezone.0;
        let (day, minutes) = if minutes >= 1440 { (day.succ_opt().unwrap_or(day), 0) } else { (day, minutes) };
        let mut naive = day.and_time(NaiveTime::MIN) + chrono::TimeDelta::minutes(i64::from(minutes));
        // Gaps are at most a couple of hours in the tz database; step over them a minute at a time.
        for _ in 0..(4 * 60) {
            if let Some(at) = tz.from_local_datetime(&naive).earliest() {
                return at.timestamp_millis();
            }
            naive += chrono::TimeDelta::minutes(1);
        }
        naive.and_utc().timestamp_millis()
    }

    /// The JSON shape, as stored and shown.
    pub fn spec(&self) -> SendWindowSpec {
        SendWindowSpec {
            start: hhmm(self.start),
            end: hhmm(self.end),
            days: Some(self.days.iter().map(|d| day_name(*d).to_string()).collect()),
            timezone: self.timezone.name().to_string(),
        }
    }
}

impl TryFrom<SendWindowSpec> for SendWindow {
    type Error = String;
    fn try_from(spec: SendWindowSpec) -> Result<Self, String> {
        SendWindow::parse(&spec).map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
    }
}

impl From<SendWindow> for SendWindowSpec {
    fn from(window: SendWindow) -> SendWindowSpec {
        window.spec()
    }
}

/// Why the host holds a recovery message back (it is sent later, never early, never dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// Due outside the lead's send window.
    SendWindow,
    /// The contact already had the producer's maximum of recovery messages in the period.
    ContactCap,
}

impl HoldReason {
    /// As the timeline and `funnel simulate` say it.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::SendWindow => "send_window",
            HoldReason::ContactCap => "contact_cap",
        }
    }
}

/// A message held back until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub until: i64,
    pub reason: HoldReason,
    /// `until` in the lead's local time, when a window gives the zone.
    pub local: Option<String>,
}

impl Hold {
    /// The hold of a message due at `now` under `window`, if it falls outside it.
    pub fn window(window: Option<&SendWindow>, now: i64) -> Option<Hold> {
        let window = window?;
        let until = window.opens_at(now);
        (until > now).then(|| Hold {
            until,
            reason: HoldReason::SendWindow,
            local: Some(window.timezone().local_text(until)),
        })
    }

    /// The timeline's note of holding message `message_id`.
    pub fn timeline_note(&self, message_id: &str, channel: super::Channel, tag: &str) -> super::TimelineNote {
        super::TimelineNote::Deferred(super::timeline::HoldNote {
            message_id: message_id.to_string(),
            channel,
            tag: tag.to_string(),
            reason: self.reason,
            until: self.until,
            until_local: self.local.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: &str, end: &str, days: Option<&[&str]>, tz: &str) -> SendWindow {
        SendWindow::parse(&SendWindowSpec {
            start: start.into(),
            end: end.into(),
            days: days.map(|d| d.iter().map(|s| s.to_string()).collect()),
            timezone: tz.into(),
        })
        .unwrap()
    }

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    #[test]
    fn inside_is_now_outside_is_the_next_opening() {
        let w = window("08:00", "21:00", None, "America/Sao_Paulo");
        // 23:10 in São Paulo (UTC-3) is 02:10Z the next day: opens at 08:00 local = 11:00Z.
        assert_eq!(w.opens_at(ms("2026-01-02T02:10:00Z")), ms("2026-01-02T11:00:00Z"));
        assert_eq!(w.opens_at(ms("2026-01-02T12:00:00Z")), ms("2026-01-02T12:00:00Z"));
        // Closing is exclusive: 21:00 local is closed.
        assert_eq!(w.opens_at(ms("2026-01-02T00:00:00Z")), ms("2026-01-02T11:00:00Z"));
        assert_eq!(w.opens_at(ms("2026-01-01T23:59:59Z")), ms("2026-01-01T23:59:59Z"));
    }

    #[test]
    fn days_skip_to_the_next_listed_day() {
        // 2026-01-03 is a Saturday.
        let w = window("09:00", "17:00", Some(&["mon", "tue", "wed", "thu", "fri"]), "Europe/Warsaw");
        assert_eq!(w.opens_at(ms("2026-01-03T10:00:00Z")), ms("2026-01-05T08:00:00Z"));
    }

    #[test]
    fn overnight_windows_open_on_their_day_and_close_next_morning() {
        let w = window("22:00", "06:00", Some(&["fri"]), "UTC");
        // Friday 2026-01-02 23:00 open; Saturday 05:00 still open (Friday's window); Saturday 07:00 closed.
        assert_eq!(w.opens_at(ms("2026-01-02T23:00:00Z")), ms("2026-01-02T23:00:00Z"));
        assert_eq!(w.opens_at(ms("2026-01-03T05:00:00Z")), ms("2026-01-03T05:00:00Z"));
        assert_eq!(w.opens_at(ms("2026-01-03T07:00:00Z")), ms("2026-01-09T22:00:00Z"));
    }

    #[test]
    fn a_dst_gap_opens_after_the_gap() {
        // Warsaw skips 02:00-03:00 on 2026-03-29.
        let w = window("02:30", "04:00", None, "Europe/Warsaw");
        assert_eq!(w.opens_at(ms("2026-03-29T00:00:00Z")), ms("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn every_bad_value_names_its_field() {
        let spec = |start: &str, end: &str, days: Option<Vec<&str>>, tz: &str| SendWindowSpec {
            start: start.into(),
            end: end.into(),
            days: days.map(|d| d.into_iter().map(String::from).collect()),
            timezone: tz.into(),
        };
        for (bad, path) in [
            (spec("8:00", "21:00", None, "UTC"), "start"),
            (spec("24:00", "21:00", None, "UTC"), "start"),
            (spec("08:00", "21:60", None, "UTC"), "end"),
            (spec("08:00", "08:00", None, "UTC"), "end"),
            (spec("08:00", "21:00", Some(vec![]), "UTC"), "days"),
            (spec("08:00", "21:00", Some(vec!["mon", "funday"]), "UTC"), "days[1]"),
            (spec("08:00", "21:00", Some(vec!["mon", "mon"]), "UTC"), "days[1]"),
            (spec("08:00", "21:00", None, "Mars/Olympus"), "timezone"),
        ] {
            let errors = SendWindow::parse(&bad).unwrap_err();
            assert_eq!(errors[0].path, path, "{bad:?}");
        }
        assert!(TimeZone::parse("America/Sao_Paulo").is_ok());
        assert!(TimeZone::parse("america/sao_paulo").is_err());
    }
}
