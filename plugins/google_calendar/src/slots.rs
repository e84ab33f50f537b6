//! Free slots: what is left of a range once every busy interval is taken
//! out of it.
//!
//! Google's free/busy answer lists busy intervals per calendar, which leaves
//! the model to merge several lists in its head and subtract them from the
//! range, something it gets wrong often enough (overlaps, intervals that
//! run past the range, touching intervals) to do it here instead.

use crate::rfc3339::Instant;

/// A half-open interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: Instant,
    pub end: Instant,
}

/// The gaps in `range` not covered by any of `busy`, in order, each at
/// least `min_minutes` long. Busy intervals may overlap, touch, run past
/// the range or be empty.
pub fn free(range: Interval, busy: &[Interval], min_minutes: u32) -> Vec<Interval> {
    let mut busy: Vec<Interval> = busy
        .iter()
        .map(|b| Interval {
            start: b.start.max(range.start),
            end: b.end.min(range.end),
        })
        .filter(|b| b.start < b.end)
        .collect();
    busy.sort_by_key(|b| b.start);
    let mut gaps = Vec::new();
    let mut cursor = range.start;
    for b in busy {
        if b.start > cursor {
            gaps.push(Interval {
                start: cursor,
                end: b.start,
            });
        }
        cursor = cursor.max(b.end);
    }
    if cursor < range.end {
        gaps.push(Interval {
            start: cursor,
            end: range.end,
        });
    }
    gaps.retain(|g| g.start.minutes_until(g.end) >= i64::from(min_minutes));
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfc3339::{Offset, parse_date_time};

    fn at(hhmm: &str) -> Instant {
        parse_date_time(&format!("2024-05-01T{hhmm}:00Z"))
            .unwrap()
            .instant()
            .unwrap()
    }

    fn iv(a: &str, b: &str) -> Interval {
        Interval {
            start: at(a),
            end: at(b),
        }
    }

    fn show(gaps: &[Interval]) -> Vec<String> {
        gaps.iter()
            .map(|g| {
                let f = |i: Instant| i.format(Offset::UTC)[11..16].to_owned();
                format!("{}-{}", f(g.start), f(g.end))
            })
            .collect()
    }

    #[test]
    fn overlapping_and_touching_busy_intervals_are_merged() {
        let busy = [
            iv("10:00", "11:00"),
            iv("10:30", "11:30"),
            iv("11:30", "12:00"),
            iv("14:00", "14:15"),
        ];
        let gaps = free(iv("09:00", "17:00"), &busy, 0);
        assert_eq!(show(&gaps), ["09:00-10:00", "12:00-14:00", "14:15-17:00"]);
    }

    #[test]
    fn busy_intervals_past_the_range_are_clipped() {
        let busy = [
            iv("07:00", "09:30"),
            iv("16:30", "19:00"),
            iv("05:00", "06:00"),
        ];
        assert_eq!(show(&free(iv("09:00", "17:00"), &busy, 0)), ["09:30-16:30"]);
        // Busy all along: nothing is free.
        assert!(free(iv("09:00", "17:00"), &[iv("08:00", "18:00")], 0).is_empty());
        // Nothing busy: the whole range is free.
        assert_eq!(show(&free(iv("09:00", "17:00"), &[], 0)), ["09:00-17:00"]);
    }

    #[test]
    fn short_gaps_are_left_out_when_asked() {
        let busy = [iv("09:20", "10:00"), iv("10:45", "11:00")];
        let range = iv("09:00", "11:30");
        assert_eq!(
            show(&free(range, &busy, 0)),
            ["09:00-09:20", "10:00-10:45", "11:00-11:30"]
        );
        assert_eq!(
            show(&free(range, &busy, 30)),
            ["10:00-10:45", "11:00-11:30"]
        );
        assert_eq!(show(&free(range, &busy, 45)), ["10:00-10:45"]);
    }

    #[test]
    fn inverted_or_empty_busy_intervals_change_nothing() {
        let busy = [iv("12:00", "11:00"), iv("13:00", "13:00")];
        assert_eq!(show(&free(iv("09:00", "17:00"), &busy, 0)), ["09:00-17:00"]);
    }
}
