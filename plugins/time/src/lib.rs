//! `time`: dates and times in any IANA time zone, with the zone database
//! compiled in (the sandbox has no filesystem to read one from).
//!
//! Date-times are accepted as RFC 9557 (`2026-03-08T02:30-05:00[America/New_York]`),
//! RFC 3339 (`2026-03-08T07:30:00Z`), a civil date-time (`2026-03-08T02:30`) or
//! a date (`2026-03-08`); the last two are read in the `zone` argument (UTC
//! when absent). Results carry the RFC 9557 form, so they can be fed back.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Unit, Zoned, ZonedDifference};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use schemars::JsonSchema;

use mcpist_plugin::{Call, Declaration, ToolError, ToolFlags, ToolSpec};

mcpist_plugin::module!(declaration);

fn declaration() -> Declaration {
    let pure = ToolFlags::READ_ONLY | ToolFlags::IDEMPOTENT | ToolFlags::CONCURRENCY_SAFE;
    let zoned = |name: &str, description: &str, flags: ToolFlags| {
        ToolSpec::new(name, description, flags).output(zoned_schema())
    };
    Declaration::new(
        "time",
        env!("CARGO_PKG_VERSION"),
        "Dates and times: the current time in any time zone, zone conversion, parsing and formatting, and date arithmetic.",
    )
    .tool(
        zoned(
            "now",
            "The current date and time in an IANA time zone (UTC by default).",
            // Not idempotent: the answer changes with time.
            ToolFlags::READ_ONLY | ToolFlags::CONCURRENCY_SAFE,
        ),
        now,
    )
    .tool(zoned("convert", "Express a date-time in another time zone.", pure), convert)
    .tool(
        ToolSpec::new(
            "format",
            "Format a date-time with a strftime pattern, e.g. \"%A %d %B %Y, %H:%M %Z\".",
            pure,
        )
        .output(json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})),
        format,
    )
    .tool(
        zoned(
            "parse",
            "Parse text with a strftime pattern (e.g. \"%d/%m/%Y %H:%M\") into a date-time. Text without an offset or zone is read in `zone`.",
            pure,
        ),
        parse,
    )
    .tool(
        zoned(
            "add",
            "Add a duration to a date-time, in its time zone (so adding 1 day across a DST change keeps the wall-clock time). The duration is ISO 8601 (P1DT2H, -P3W) or friendly (\"1 day 2 hours\", \"-3 weeks\").",
            pure,
        ),
        add,
    )
    .tool(
        ToolSpec::new(
            "difference",
            "The duration from `start` to `end`, balanced up to the largest unit asked for (default days).",
            pure,
        )
        .output(json!({
            "type": "object",
            "properties": {
                "iso8601": {"type": "string"},
                "friendly": {"type": "string"},
                "total_seconds": {"type": "number"}
            },
            "required": ["iso8601", "friendly", "total_seconds"]
        })),
        difference,
    )
}

fn zoned_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "datetime": {"type": "string", "description": "RFC 9557: date, time, offset and zone."},
            "zone": {"type": "string"},
            "offset": {"type": "string"},
            "date": {"type": "string"},
            "time": {"type": "string"},
            "weekday": {"type": "string"},
            "unix_seconds": {"type": "integer"}
        },
        "required": ["datetime", "zone", "offset", "date", "time", "weekday", "unix_seconds"]
    })
}

fn invalid(what: &str, value: &str, error: impl std::fmt::Display) -> ToolError {
    ToolError::InvalidArguments(format!("{what} {value:?}: {error}"))
}

fn zone(name: Option<&str>) -> Result<TimeZone, ToolError> {
    match name {
        None => Ok(TimeZone::UTC),
        Some(name) => TimeZone::get(name).map_err(|e| invalid("unknown time zone", name, e)),
    }
}

/// Read a date-time in any of the accepted forms; civil forms are read in `tz`.
fn read_datetime(text: &str, tz: &TimeZone) -> Result<Zoned, ToolError> {
    let text = text.trim();
    if let Ok(zoned) = text.parse::<Zoned>() {
        return Ok(zoned);
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts.to_zoned(tz.clone()));
    }
    let civil = match text.parse::<DateTime>() {
        Ok(dt) => dt,
        Err(_) => text
            .parse::<Date>()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|e| invalid("unrecognised date-time", text, e))?,
    };
    civil
        .to_zoned(tz.clone())
        .map_err(|e| invalid("date-time does not exist in its zone", text, e))
}

fn describe_zoned(z: &Zoned) -> Value {
    json!({
        "datetime": z.to_string(),
        "zone": z.time_zone().iana_name().unwrap_or("fixed offset"),
        "offset": z.offset().to_string(),
        "date": z.date().to_string(),
        "time": z.time().to_string(),
        "weekday": format!("{:?}", z.weekday()),
        "unix_seconds": z.timestamp().as_second(),
    })
}

#[derive(Deserialize, JsonSchema)]
struct NowArgs {
    /// IANA time zone, e.g. Europe/Paris. Default UTC.
    zone: Option<String>,
}

fn now(args: NowArgs, _: &mut Call) -> Result<Value, ToolError> {
    let tz = zone(args.zone.as_deref())?;
    Ok(describe_zoned(&Timestamp::now().to_zoned(tz)))
}

#[derive(Deserialize, JsonSchema)]
struct ConvertArgs {
    /// RFC 9557, RFC 3339, civil date-time (2026-03-08T02:30) or date (2026-03-08).
    datetime: String,
    /// IANA time zone of a civil date-time, e.g. Europe/Paris. Default UTC.
    zone: Option<String>,
    /// Target IANA time zone.
    to_zone: String,
}

fn convert(args: ConvertArgs, _: &mut Call) -> Result<Value, ToolError> {
    let from = read_datetime(&args.datetime, &zone(args.zone.as_deref())?)?;
    let to = zone(Some(&args.to_zone))?;
    Ok(describe_zoned(&from.with_time_zone(to)))
}

#[derive(Deserialize, JsonSchema)]
struct FormatArgs {
    /// RFC 9557, RFC 3339, civil date-time (2026-03-08T02:30) or date (2026-03-08).
    datetime: String,
    /// IANA time zone of a civil date-time, e.g. Europe/Paris. Default UTC.
    zone: Option<String>,
    /// strftime pattern.
    format: String,
}

fn format(args: FormatArgs, _: &mut Call) -> Result<Value, ToolError> {
    let z = read_datetime(&args.datetime, &zone(args.zone.as_deref())?)?;
    let text = jiff::fmt::strtime::format(args.format.as_bytes(), &z)
        .map_err(|e| invalid("cannot format with", &args.format, e))?;
    Ok(json!({"text": text}))
}

#[derive(Deserialize, JsonSchema)]
struct ParseArgs {
    text: String,
    /// strftime pattern.
    format: String,
    /// IANA time zone for text without an offset or zone. Default UTC.
    zone: Option<String>,
}

fn parse(args: ParseArgs, _: &mut Call) -> Result<Value, ToolError> {
    let tz = zone(args.zone.as_deref())?;
    let tm = jiff::fmt::strtime::parse(args.format.as_bytes(), args.text.as_bytes())
        .map_err(|e| invalid("cannot parse", &args.text, e))?;
    let zoned = match tm.to_zoned() {
        Ok(z) => z,
        // No offset or zone in the text: read the civil date-time in `zone`.
        Err(_) => tm
            .to_datetime()
            .map_err(|e| invalid("incomplete date-time in", &args.text, e))?
            .to_zoned(tz)
            .map_err(|e| invalid("date-time does not exist in its zone", &args.text, e))?,
    };
    Ok(describe_zoned(&zoned))
}

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// RFC 9557, RFC 3339, civil date-time (2026-03-08T02:30) or date (2026-03-08).
    datetime: String,
    /// IANA time zone of a civil date-time, e.g. Europe/Paris. Default UTC.
    zone: Option<String>,
    /// ISO 8601 (P1DT2H, -P3W) or friendly ("1 day 2 hours", "-3 weeks").
    duration: String,
}

fn add(args: AddArgs, _: &mut Call) -> Result<Value, ToolError> {
    let z = read_datetime(&args.datetime, &zone(args.zone.as_deref())?)?;
    let span: Span = args
        .duration
        .parse()
        .map_err(|e| invalid("unrecognised duration", &args.duration, e))?;
    let result = z.checked_add(span).map_err(|e| {
        ToolError::Failed(format!(
            "cannot add {} to {}: {e}",
            args.duration, args.datetime
        ))
    })?;
    Ok(describe_zoned(&result))
}

#[derive(Deserialize, Serialize, JsonSchema, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Largest {
    Years,
    Months,
    Weeks,
    #[default]
    Days,
    Hours,
    Minutes,
    Seconds,
}

#[derive(Deserialize, JsonSchema)]
struct DifferenceArgs {
    /// RFC 9557, RFC 3339, civil date-time (2026-03-08T02:30) or date (2026-03-08).
    start: String,
    /// RFC 9557, RFC 3339, civil date-time (2026-03-08T02:30) or date (2026-03-08).
    end: String,
    /// IANA time zone of civil date-times, e.g. Europe/Paris. Default UTC.
    zone: Option<String>,
    /// The largest unit of the result.
    #[serde(default)]
    largest: Largest,
}

fn difference(args: DifferenceArgs, _: &mut Call) -> Result<Value, ToolError> {
    let tz = zone(args.zone.as_deref())?;
    let start = read_datetime(&args.start, &tz)?;
    let end = read_datetime(&args.end, &tz)?;
    let largest = match args.largest {
        Largest::Years => Unit::Year,
        Largest::Months => Unit::Month,
        Largest::Weeks => Unit::Week,
        Largest::Days => Unit::Day,
        Largest::Hours => Unit::Hour,
        Largest::Minutes => Unit::Minute,
        Largest::Seconds => Unit::Second,
    };
    let span = start
        .until(ZonedDifference::new(&end).largest(largest))
        .map_err(|e| ToolError::Failed(format!("cannot compute the difference: {e}")))?;
    let total = end
        .timestamp()
        .duration_since(start.timestamp())
        .as_secs_f64();
    Ok(json!({
        "iso8601": span.to_string(),
        "friendly": format!("{span:#}"),
        "total_seconds": total,
    }))
}
