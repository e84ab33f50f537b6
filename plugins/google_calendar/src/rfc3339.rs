//! RFC 3339 dates and date-times, as the Calendar API reads and writes them.
//!
//! Only what the tools need: reading a date-time (with or without its UTC
//! offset) or a date, comparing instants, and writing an instant back at a
//! fixed UTC offset. No time zone database is compiled in (the module would
//! grow by hundreds of kilobytes for it): Google resolves zone names itself,
//! and every instant computed here carries its own offset.
//!
//! Arguments are checked here, before any request, because Google answers a
//! malformed `timeMin` with a bare "400 Bad Request" that does not say which
//! value was wrong or why.

use std::cmp::Ordering;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A calendar date (proleptic Gregorian), years 0000 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    year: i32,
    month: u32,
    day: u32,
}

impl Date {
    /// Days since 1970-01-01 (negative before it).
    fn days_since_epoch(self) -> i64 {
        days_from_civil(self.year as i64, self.month as i64, self.day as i64)
    }

    pub fn next_day(self) -> Date {
        let (year, month, day) = civil_from_days(self.days_since_epoch() + 1);
        Date {
            year: year as i32,
            month,
            day,
        }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A UTC offset as written: `Z` or `±HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    minutes: i32,
    /// Written `Z` (or `z`) rather than `+00:00`; kept so that an instant is
    /// written back the way the caller wrote its offset.
    zulu: bool,
}

impl Offset {
    pub const UTC: Offset = Offset {
        minutes: 0,
        zulu: true,
    };
}

/// A date-time as written, its offset optional (Google accepts a local
/// date-time for an event when a zone name is given beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    date: Date,
    /// Seconds into the day, 0 to 86400 (a leap second is `23:59:60`).
    second_of_day: u32,
    nanos: u32,
    offset: Option<Offset>,
}

impl DateTime {
    pub fn offset(&self) -> Option<Offset> {
        self.offset
    }

    /// The instant, when the offset is known.
    pub fn instant(&self) -> Option<Instant> {
        let offset = self.offset?;
        let local = self.local_seconds() as i128 * NANOS_PER_SECOND + self.nanos as i128;
        Some(Instant {
            nanos: local - offset.minutes as i128 * 60 * NANOS_PER_SECOND,
        })
    }

    /// Order by wall-clock reading, ignoring any offset: for two local
    /// date-times in the same zone.
    pub fn cmp_local(&self, other: &DateTime) -> Ordering {
        (self.local_seconds(), self.nanos).cmp(&(other.local_seconds(), other.nanos))
    }

    fn local_seconds(&self) -> i64 {
        self.date.days_since_epoch() * SECONDS_PER_DAY + self.second_of_day as i64
    }
}

/// A point on the UTC time line, to the nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant {
    /// Since 1970-01-01T00:00:00Z.
    nanos: i128,
}

impl Instant {
    /// Whole minutes from `self` to `later` (rounded down; 0 if not later).
    pub fn minutes_until(self, later: Instant) -> i64 {
        let nanos = (later.nanos - self.nanos).max(0);
        (nanos / (60 * NANOS_PER_SECOND)) as i64
    }

    /// RFC 3339 at `offset`, e.g. `2024-05-01T09:30:00+02:00`; fractional
    /// seconds only when there are any.
    pub fn format(self, offset: Offset) -> String {
        let local = self.nanos + offset.minutes as i128 * 60 * NANOS_PER_SECOND;
        let seconds = local.div_euclid(NANOS_PER_SECOND) as i64;
        let nanos = local.rem_euclid(NANOS_PER_SECOND) as u32;
        let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
        let in_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let mut out = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            in_day / 3600,
            in_day / 60 % 60,
            in_day % 60
        );
        if nanos > 0 {
            let fraction = format!("{nanos:09}");
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        if offset.zulu && offset.minutes == 0 {
            out.push('Z');
        } else {
            let sign = if offset.minutes < 0 { '-' } else { '+' };
            let minutes = offset.minutes.abs();
            out.push_str(&format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60));
        }
        out
    }
}

/// Read `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("a date is written YYYY-MM-DD".to_owned());
    }
    let year = digits(&b[0..4]).ok_or("the year must be four digits")?;
    let month = digits(&b[5..7]).ok_or("the month must be two digits")?;
    let day = digits(&b[8..10]).ok_or("the day must be two digits")?;
    if !(1..=12).contains(&month) {
        return Err(format!("there is no month {month:02}"));
    }
    if day < 1 || day > days_in_month(year as i32, month) {
        return Err(format!("{year:04}-{month:02} has no day {day:02}"));
    }
    Ok(Date {
        year: year as i32,
        month,
        day,
    })
}

/// Read `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]`; the offset may be
/// missing (the caller decides whether that is allowed).
pub fn parse_date_time(text: &str) -> Result<DateTime, String> {
    let shape = "a date-time is written like 2024-05-01T09:30:00+02:00";
    if !text.is_ascii() || text.len() < 19 {
        return Err(shape.to_owned());
    }
    let b = text.as_bytes();
    let date = parse_date(&text[..10])?;
    if !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return Err(shape.to_owned());
    }
    let hour = digits(&b[11..13]).ok_or(shape)?;
    let minute = digits(&b[14..16]).ok_or(shape)?;
    let second = digits(&b[17..19]).ok_or(shape)?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!(
            "{hour:02}:{minute:02}:{second:02} is not a time of day"
        ));
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some((b'.', fraction)) = rest.split_first() {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err("a decimal point must be followed by digits".to_owned());
        }
        // Digits past nanoseconds carry nothing Google keeps.
        for (i, d) in fraction[..n].iter().take(9).enumerate() {
            nanos += (d - b'0') as u32 * 10u32.pow(8 - i as u32);
        }
        rest = &fraction[n..];
    }
    let offset = match rest {
        [] => None,
        [b'Z' | b'z'] => Some(Offset::UTC),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2]).ok_or(shape)?;
            let minutes = digits(&[*m1, *m2]).ok_or(shape)?;
            if hours > 23 || minutes > 59 {
                return Err(format!("{hours:02}:{minutes:02} is not a UTC offset"));
            }
            let total = (hours * 60 + minutes) as i32;
            Some(Offset {
                minutes: if *sign == b'-' { -total } else { total },
                zulu: false,
            })
        }
        _ => {
            return Err(format!(
                "{shape} (the UTC offset is Z or ±HH:MM, e.g. +02:00)"
            ));
        }
    };
    Ok(DateTime {
        date,
        second_of_day: hour * 3600 + minute * 60 + second,
        nanos,
        offset,
    })
}

/// Days from the start of `(year, month, day)`'s day to 1970-01-01, in the
/// proleptic Gregorian calendar (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// ASCII digits as a number; `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + (b - b'0') as u32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Instant {
        parse_date_time(text).unwrap().instant().unwrap()
    }

    #[test]
    fn the_same_instant_at_different_offsets_is_equal() {
        assert_eq!(at("2024-05-01T09:30:00+02:00"), at("2024-05-01T07:30:00Z"));
        assert_eq!(at("2024-05-01T00:30:00-05:30"), at("2024-05-01T06:00:00z"));
        assert_eq!(at("2024-03-01T00:00:00+01:00"), at("2024-02-29T23:00:00Z"));
        assert!(at("2024-05-01T07:30:00.001Z") > at("2024-05-01T09:30:00+02:00"));
        assert_eq!(at("1970-01-01T00:00:00Z"), Instant { nanos: 0 });
        assert_eq!(
            at("1969-12-31T23:59:59.5Z"),
            Instant {
                nanos: -500_000_000
            }
        );
    }

    #[test]
    fn instants_are_written_back_at_an_offset() {
        let t = at("2024-05-01T07:30:00Z");
        let paris = parse_date_time("2024-01-01T00:00:00+02:00")
            .unwrap()
            .offset()
            .unwrap();
        assert_eq!(t.format(paris), "2024-05-01T09:30:00+02:00");
        assert_eq!(t.format(Offset::UTC), "2024-05-01T07:30:00Z");
        let marquesas = parse_date_time("2024-01-01T00:00:00-09:30")
            .unwrap()
            .offset()
            .unwrap();
        assert_eq!(t.format(marquesas), "2024-04-30T22:00:00-09:30");
        assert_eq!(
            at("2000-02-29T23:59:59.250+00:00").format(Offset::UTC),
            "2000-02-29T23:59:59.25Z"
        );
        // Round trip over a few centuries, leap days included.
        for text in [
            "1600-02-29T12:00:00Z",
            "1900-03-01T00:00:00Z",
            "2100-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
        ] {
            assert_eq!(at(text).format(Offset::UTC), text);
        }
    }

    #[test]
    fn minutes_between_instants() {
        let a = at("2024-05-01T09:00:00+02:00");
        let b = at("2024-05-01T08:29:59Z");
        assert_eq!(a.minutes_until(b), 89);
        assert_eq!(b.minutes_until(a), 0);
    }

    #[test]
    fn local_date_times_compare_by_their_reading() {
        let a = parse_date_time("2024-05-01T09:00:00").unwrap();
        let b = parse_date_time("2024-05-01T10:00:00").unwrap();
        assert_eq!(a.offset(), None);
        assert_eq!(a.instant(), None);
        assert_eq!(a.cmp_local(&b), Ordering::Less);
    }

    #[test]
    fn malformed_values_say_why() {
        for (text, why) in [
            ("2024-05-01", "a date-time is written like"),
            ("2024-05-01 09:00:00Z", "a date-time is written like"),
            ("2024-13-01T09:00:00Z", "there is no month 13"),
            ("2023-02-29T09:00:00Z", "2023-02 has no day 29"),
            ("2024-05-01T24:00:00Z", "24:00:00 is not a time of day"),
            ("2024-05-01T09:00:00+0200", "the UTC offset is Z or ±HH:MM"),
            ("2024-05-01T09:00:00+24:00", "24:00 is not a UTC offset"),
            ("2024-05-01T09:00:00.Z", "a decimal point must be followed"),
            ("2024-05-01T09:00:00Zjunk", "the UTC offset is Z or ±HH:MM"),
            ("２０２４-05-01T09:00:00Z", "a date-time is written like"),
        ] {
            let error = parse_date_time(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
        assert_eq!(
            parse_date("2024-02-28").unwrap().next_day().to_string(),
            "2024-02-29"
        );
        assert_eq!(
            parse_date("2023-12-31").unwrap().next_day().to_string(),
            "2024-01-01"
        );
        assert!(parse_date("2024-5-01").is_err());
        assert!(parse_date("2024-02-30").is_err());
        assert_eq!(
            parse_date("2024-02-29").unwrap(),
            Date {
                year: 2024,
                month: 2,
                day: 29
            }
        );
    }
}
