#!/usr/bin/env python3
"""A local stand-in for www.googleapis.com's Calendar API v3, for tests.

It speaks the routes the `google_calendar` module uses, with Google's JSON
shapes (calendar list entries, events, free/busy answers) and Google's error
bodies, over plain HTTP on 127.0.0.1. Each user has deterministic calendars
and events derived from their name, so a test can tell which account's token
arrived: alice's primary calendar is alice@example.com, and her recurring
meetings are set in her own zone.

Tokens are checked in one of two ways:

    python3 tests/e2e/upstreams/google.py --port 0 \
        --tokens '{"ya29.tok-a": "alice", "ya29.tok-b": "bob@example.org"}'

maps each bearer token to a user (as notion.py and github.py do), and

    python3 tests/e2e/upstreams/google.py --port 0 \
        --introspect http://127.0.0.1:4000/token/introspection \
        --client-id calendar-api --client-secret calendar-api-secret

asks an RFC 7662 introspection endpoint about every token, on every request
(client_secret_basic, form `token=...`): a token is accepted only while the
answer says `active`, and the user is its `sub`. That is how a resource
server in front of an OAuth provider sees revocation at once.

Either way it prints exactly one line, `listening on <port>`, once it accepts
connections, and serves until it is killed (SIGTERM and SIGINT exit cleanly).

Routes, under /calendar/v3:
    GET  /users/me/calendarList                  maxResults (1-250), pageToken
    GET  /calendars/{calendarId}/events          timeMin, timeMax, singleEvents,
                                                 orderBy, q, maxResults (1-2500),
                                                 pageToken, timeZone
    GET  /calendars/{calendarId}/events/{eventId}  timeZone
    POST /calendars/{calendarId}/events          sendUpdates; an event body
    POST /freeBusy                               timeMin, timeMax, timeZone, items
and, for tests, on the same server:
    GET  /_test/requests    {"requests": API requests so far,
                             "unauthorized": 401 answers among them}
    POST /_test/distrust    from now on, refuse every token seen so far
                            (as a service that ended its sessions would),
                            whatever the token checker says

`calendarId` is `primary`, or an id from the user's calendar list (path
segments are percent-decoded, so `en.usa%23holiday%40group...` works).
Free/busy also answers for another known user's primary calendar (their
email address), as a Google Workspace domain shares free/busy; anything else
is reported per calendar as `notFound`, as Google does. Events created with
POST are kept in memory, per user, and show up in later lists, reads and
free/busy answers.

What each user has (in their zone, chosen from the name):
    primary    Daily standup (weekdays 09:30-09:45), Lunch walk (every day
               12:30-13:00, marked free), Weekly planning (Mondays 14:00-15:00,
               organised by a colleague), Focus time (Wednesdays 13:00-15:00);
               in March 2025: a 1:1 (Wed 12th 11:00-11:30), the Quarterly
               review (Fri 14th 15:00-16:30, 24 attendees, a long
               description) and a company offsite (all day, 20th-21st).
    Projects   a team calendar the user may write to: Release review
               (Thursdays 16:00-17:00).
    Holidays   en.usa#holiday@group.v.calendar.google.com, read-only, free:
               New Year's Day, Independence Day, Christmas Day.
Series start on 2024-01-01. A list with singleEvents=true and no timeMax
expands series for a year after timeMin, where Google would keep paging.

The time zone database comes from the system (zoneinfo). Python standard
library only.
"""

import argparse
import base64
import hashlib
import json
import re
import sys
import threading
import urllib.error
import urllib.request
from datetime import date, datetime, time, timedelta, timezone
from functools import partial
from urllib.parse import parse_qsl, quote_plus, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import serving

API = ("calendar", "v3")
HOLIDAYS = "en.usa#holiday@group.v.calendar.google.com"
ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
COLLEAGUES = ["dana", "lee", "sam", "kim", "ravi", "mia", "noor", "jon"]
SERIES_START = date(2024, 1, 1)
SEEDED = "2024-01-02T10:00:00.000Z"
MAX_EVENTS_PER_PAGE = 2500
MAX_CALENDARS_PER_PAGE = 250
MAX_FREE_BUSY_ITEMS = 50
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


# --------------------------------------------------------------------------
# Errors, as Google's JSON APIs write them
# --------------------------------------------------------------------------


class ApiError(Exception):
    """`{"error": {"code", "message", "errors": [{"domain", "reason",
    "message", "location", "locationType"}], "status"}}`."""

    def __init__(self, code, message, reason, domain="global", location=None, location_type="parameter",
                 status=None, headers=(), detail=None):
        super().__init__(message)
        self.code = code
        self.message = message
        # errors[].message, when Google words it apart from the message.
        self.detail = detail or message
        self.reason = reason
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.status = status
        self.headers = list(headers)

    def body(self):
        detail = {"domain": self.domain, "reason": self.reason, "message": self.detail}
        if self.location:
            detail["locationType"] = self.location_type
            detail["location"] = self.location
        error = {"code": self.code, "message": self.message, "errors": [detail]}
        if self.status:
            error["status"] = self.status
        return {"error": error}


class PageNotFound(Exception):
    """A URL no API serves: Google answers with an HTML page, not JSON."""


def bad_request(location=None):
    return ApiError(400, "Bad Request", "badRequest", location=location)


def invalid(location, message="Invalid Value"):
    return ApiError(400, message, "invalid", location=location)


def required(message, location=None):
    return ApiError(400, message, "required", location=location)


def not_found():
    return ApiError(404, "Not Found", "notFound")


def time_range_empty(location="timeMax"):
    return ApiError(400, "The specified time range is empty.", "timeRangeEmpty", domain="calendar",
                    location=location)


def unauthenticated(token_given):
    """401 as Google writes it, with the challenge a Bearer client expects."""
    challenge = 'Bearer realm="https://accounts.google.com/"'
    if token_given:
        return ApiError(401, INVALID_CREDENTIALS, "authError", location="Authorization", location_type="header",
                        status="UNAUTHENTICATED", detail="Invalid Credentials",
                        headers=[("WWW-Authenticate", challenge + ', error="invalid_token"')])
    return ApiError(401, MISSING_CREDENTIALS, "required", location="Authorization", location_type="header",
                    status="UNAUTHENTICATED", detail="Login Required.",
                    headers=[("WWW-Authenticate", challenge)])


# --------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------


RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date_time(text):
    """An RFC 3339 date-time: aware if it has an offset, naive if not; None
    if it is not one."""
    m = RFC3339.match(text) if isinstance(text, str) else None
    if not m:
        return None
    day, clock, fraction, offset = m.groups()
    # Python reads at most microseconds; Google keeps milliseconds.
    fraction = (fraction or "")[:7]
    offset = "+00:00" if offset in ("Z", "z") else (offset or "")
    try:
        return datetime.fromisoformat(f"{day}T{clock}{fraction}{offset}")
    except ValueError:
        return None


def instant(text, location):
    """A required instant parameter (timeMin, timeMax): Google answers a
    malformed or offset-less one with a bare Bad Request."""
    value = parse_date_time(text)
    if value is None or value.tzinfo is None:
        raise bad_request(location)
    return value.astimezone(timezone.utc)


def zone(name, location):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(location, f"Invalid time zone definition for {location}.")


def written(moment, tz):
    """A date-time as Google writes it in a zone: `Z` in UTC, else the offset."""
    local = moment.astimezone(tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    offset = local.utcoffset()
    if tz is timezone.utc or (getattr(tz, "key", "") in ("UTC", "Etc/UTC") and offset == timedelta(0)):
        return text + "Z"
    return text + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


def stamp(moment):
    """A timestamp as Google writes created/updated: UTC, milliseconds."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def day_start(day, tz):
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


# --------------------------------------------------------------------------
# Ids
# --------------------------------------------------------------------------


def digest(*parts):
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()


def base32hex(*parts, length=26):
    """An id in Google's event id alphabet (lowercase a-v and 0-9)."""
    text = base64.b32hexencode(digest(*parts)).decode().lower().rstrip("=")
    return text[:length]


def html_link(event_id, calendar_id):
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def etag(*parts):
    return '"' + str(int.from_bytes(digest(*parts)[:8], "big") % 10**16).zfill(16) + '"'


def meet_link(*parts):
    letters = "".join(chr(ord("a") + b % 26) for b in digest("meet", *parts)[:10])
    return f"https://meet.google.com/{letters[:3]}-{letters[3:7]}-{letters[7:10]}"


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


class Template:
    """An event as stored. `kind` is `single` (start and end are aware
    datetimes, or dates for an all-day event), `weekly` (a series on
    `weekdays` at a local time of day, from SERIES_START), or `yearly` (an
    all-day holiday on a month and day, one separate event per year, as
    Google's holiday calendars have)."""

    def __init__(self, ident, summary, kind, *, organizer, creator, zone_name=None, start=None, end=None,
                 weekdays=(), at=None, minutes=0, month_day=None, description=None, location=None,
                 attendees=(), event_type="default", transparent=False, meet=False, created=SEEDED):
        self.id = ident
        self.summary = summary
        self.kind = kind
        self.organizer = organizer
        self.creator = creator
        self.zone_name = zone_name
        self.start = start
        self.end = end
        self.weekdays = tuple(weekdays)
        self.at = at
        self.minutes = minutes
        self.month_day = month_day
        self.description = description
        self.location = location
        self.attendees = list(attendees)
        self.event_type = event_type
        self.transparent = transparent
        self.meet = meet_link(ident) if meet else None
        self.created = created

    def first_day(self):
        day = SERIES_START
        while day.weekday() not in self.weekdays:
            day += timedelta(days=1)
        return day

    def weekly_on(self, day):
        """The occurrence of a weekly series on `day` (a local date)."""
        tz = ZoneInfo(self.zone_name)
        start = datetime.combine(day, self.at, tzinfo=tz).astimezone(timezone.utc)
        suffix = start.strftime("%Y%m%dT%H%M%SZ")
        return Occurrence(self, f"{self.id}_{suffix}", start, start + timedelta(minutes=self.minutes),
                          series=self.id)

    def yearly_in(self, year):
        day = date(year, *self.month_day)
        return Occurrence(self, f"{day:%Y%m%d}_{self.id}", day, day + timedelta(days=1))

    def occurrences(self, tz, low, high, expand):
        """Occurrences that overlap [low, high) (UTC; either may be None);
        a weekly series is one master event unless `expand`. All-day events
        are read in the calendar's zone `tz`."""
        def overlaps(occurrence):
            start, end = occurrence.bounds(tz)
            return (high is None or start < high) and (low is None or end > low)

        if self.kind == "single":
            found = Occurrence(self, self.id, self.start, self.end)
            return [found] if overlaps(found) else []
        if self.kind == "weekly" and not expand:
            first = self.weekly_on(self.first_day())
            master = Occurrence(self, self.id, first.start, first.end, master=True)
            return [master] if high is None or first.start < high else []
        event_tz = ZoneInfo(self.zone_name) if self.zone_name else tz
        first = max(SERIES_START, (low.astimezone(event_tz).date() - timedelta(days=1)) if low else SERIES_START)
        last = (high.astimezone(event_tz).date() if high else first + timedelta(days=366))
        found = []
        if self.kind == "yearly":
            for year in range(first.year, last.year + 1):
                occurrence = self.yearly_in(year)
                if overlaps(occurrence):
                    found.append(occurrence)
            return found
        day = first
        while day <= last:
            if day.weekday() in self.weekdays:
                occurrence = self.weekly_on(day)
                if overlaps(occurrence):
                    found.append(occurrence)
            day += timedelta(days=1)
        return found

    def find(self, event_id):
        """This event, one of its occurrences, or None."""
        if self.kind == "single":
            return Occurrence(self, self.id, self.start, self.end) if event_id == self.id else None
        if self.kind == "weekly":
            if event_id == self.id:
                first = self.weekly_on(self.first_day())
                return Occurrence(self, self.id, first.start, first.end, master=True)
            prefix, _, suffix = event_id.rpartition("_")
            if prefix != self.id:
                return None
            try:
                at = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            except ValueError:
                return None
            local = at.astimezone(ZoneInfo(self.zone_name))
            if local.date() < SERIES_START or local.weekday() not in self.weekdays or local.time() != self.at:
                return None
            return self.weekly_on(local.date())
        prefix, _, suffix = event_id.partition("_")
        if suffix != self.id:
            return None
        try:
            day = datetime.strptime(prefix, "%Y%m%d").date()
        except ValueError:
            return None
        return self.yearly_in(day.year) if (day.month, day.day) == self.month_day else None

    def matches(self, words):
        people = [self.organizer, *self.attendees]
        haystack = " ".join([
            self.summary or "", self.description or "", self.location or "",
            *(p.get("email", "") + " " + p.get("displayName", "") for p in people),
        ]).lower()
        return all(word in haystack for word in words)

    def recurrence(self):
        if len(self.weekdays) == 7:
            return ["RRULE:FREQ=DAILY"]
        return ["RRULE:FREQ=WEEKLY;BYDAY=" + ",".join(WEEKDAYS[d] for d in self.weekdays)]


class Occurrence:
    """One event as listed: a single event, a series' master, or one
    occurrence of a series (with the series' id as `recurringEventId`)."""

    def __init__(self, template, ident, start, end, series=None, master=False):
        self.template = template
        self.id = ident
        self.start = start
        self.end = end
        self.series = series
        self.master = master

    def bounds(self, tz):
        if isinstance(self.start, datetime):
            return self.start, self.end
        return day_start(self.start, tz), day_start(self.end, tz)

    def json(self, calendar, user, out_tz):
        t = self.template

        def person(p):
            out = dict(p)
            if p.get("email") == user.email:
                out["self"] = True
            return out

        def when(value):
            if not isinstance(value, datetime):
                return {"date": value.isoformat()}
            out = {"dateTime": written(value, out_tz)}
            if t.zone_name:
                out["timeZone"] = t.zone_name
            return out

        event = {
            "kind": "calendar#event",
            "etag": etag(self.id, t.created),
            "id": self.id,
            "status": "confirmed",
            "htmlLink": html_link(self.id, calendar.id),
            "created": t.created,
            "updated": t.created,
            "summary": t.summary,
        }
        if t.description:
            event["description"] = t.description
        if t.location:
            event["location"] = t.location
        event["creator"] = person(t.creator)
        event["organizer"] = person(t.organizer)
        event["start"] = when(self.start)
        event["end"] = when(self.end)
        if self.master:
            event["recurrence"] = t.recurrence()
        if self.series:
            event["recurringEventId"] = self.series
            event["originalStartTime"] = when(self.start)
        if t.transparent:
            event["transparency"] = "transparent"
        if t.kind == "yearly":
            event["visibility"] = "public"
        event["iCalUID"] = f"{t.id}@google.com"
        event["sequence"] = 0
        if t.attendees:
            event["attendees"] = [person(a) for a in t.attendees]
        if t.meet:
            event["hangoutLink"] = t.meet
        event["reminders"] = {"useDefault": t.kind != "yearly"}
        event["eventType"] = t.event_type
        return event


# --------------------------------------------------------------------------
# Users and their calendars
# --------------------------------------------------------------------------


class Calendar:
    def __init__(self, ident, summary, zone_name, access_role, color, primary=False, description=None):
        self.id = ident
        self.summary = summary
        self.zone_name = zone_name
        self.tz = ZoneInfo(zone_name)
        self.access_role = access_role
        self.color = color
        self.primary = primary
        self.description = description
        self.templates = []

    def list_entry(self):
        color_id, background = self.color
        entry = {
            "kind": "calendar#calendarListEntry",
            "etag": etag("entry", self.id),
            "id": self.id,
            "summary": self.summary,
        }
        if self.description:
            entry["description"] = self.description
        entry.update({
            "timeZone": self.zone_name,
            "colorId": color_id,
            "backgroundColor": background,
            "foregroundColor": "#000000",
            "selected": True,
            "accessRole": self.access_role,
            "defaultReminders": [{"method": "popup", "minutes": 10}] if self.access_role in ("owner", "writer") else [],
        })
        if self.primary:
            entry["notificationSettings"] = {"notifications": [
                {"type": "eventCreation", "method": "email"}, {"type": "eventChange", "method": "email"},
                {"type": "eventCancellation", "method": "email"}, {"type": "eventResponse", "method": "email"}]}
            entry["primary"] = True
        entry["conferenceProperties"] = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
        return entry

    def events(self, low, high, expand):
        found = []
        for template in self.templates:
            found.extend(template.occurrences(self.tz, low, high, expand))
        return found

    def find(self, event_id):
        for template in self.templates:
            found = template.find(event_id)
            if found is not None:
                return found
        return None

    def busy(self, low, high):
        """Busy intervals in [low, high), merged: what free/busy shows of
        this calendar (events marked free do not count)."""
        spans = sorted(
            (max(s, low), min(e, high))
            for o in self.events(low, high, expand=True) if not o.template.transparent
            for s, e in [o.bounds(self.tz)]
        )
        merged = []
        for start, end in spans:
            if start >= end:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return merged


class User:
    """One Google account, built the same way from its name every time."""

    def __init__(self, name):
        self.name = name
        self.email = name.lower() if "@" in name else f"{name.lower()}@example.com"
        domain = self.email.split("@", 1)[1]
        h = digest(name)
        self.zone_name = ZONES[h[0] % len(ZONES)]
        picks = [COLLEAGUES[(h[1] + i * (1 + h[2] % 7)) % len(COLLEAGUES)] for i in range(3)]
        self.colleagues = [{"email": f"{n}@{domain}", "displayName": n.capitalize()} for n in dict.fromkeys(picks)]
        self.lock = threading.RLock()
        self.created = 0
        me = {"email": self.email}
        first, second = self.colleagues[0], self.colleagues[-1]

        primary = Calendar(self.email, self.email, self.zone_name, "owner", ("14", "#9fe1e7"), primary=True)
        add = primary.templates.append
        add(Template(self.series_id("standup"), "Daily standup", "weekly", organizer=me, creator=me,
                     zone_name=self.zone_name, weekdays=range(5), at=time(9, 30), minutes=15,
                     description="Yesterday, today, blockers.", meet=True,
                     attendees=[{**me, "organizer": True, "responseStatus": "accepted"},
                                {**first, "responseStatus": "accepted"},
                                {**second, "responseStatus": "needsAction"}]))
        add(Template(self.series_id("lunch"), "Lunch walk", "weekly", organizer=me, creator=me,
                     zone_name=self.zone_name, weekdays=range(7), at=time(12, 30), minutes=30, transparent=True))
        add(Template(self.series_id("planning"), "Weekly planning", "weekly", organizer=first, creator=first,
                     zone_name=self.zone_name, weekdays=[0], at=time(14), minutes=60, location="Room 4.2",
                     attendees=[{**first, "organizer": True, "responseStatus": "accepted"},
                                {**me, "responseStatus": "tentative"},
                                {**second, "responseStatus": "accepted"}]))
        add(Template(self.series_id("focus"), "Focus time", "weekly", organizer=me, creator=me,
                     zone_name=self.zone_name, weekdays=[2], at=time(13), minutes=120, event_type="focusTime"))
        tz = ZoneInfo(self.zone_name)

        def at(day, hour, minute=0):
            return datetime(2025, 3, day, hour, minute, tzinfo=tz).astimezone(timezone.utc)

        add(Template(self.series_id("one-on-one"), f"1:1 with {first['displayName']}", "single",
                     organizer=me, creator=me, zone_name=self.zone_name, start=at(12, 11), end=at(12, 11, 30),
                     attendees=[{**me, "organizer": True, "responseStatus": "accepted"},
                                {**first, "responseStatus": "accepted"}]))
        guests = [{"email": f"guest{i:02d}@{domain}", "responseStatus": ["accepted", "declined", "tentative",
                                                                       "needsAction"][i % 4]} for i in range(1, 24)]
        review = " ".join(f"Section {i}: numbers, risks and the plan for the next quarter of {self.name}."
                          for i in range(1, 11))
        add(Template(self.series_id("review"), "Quarterly review", "single", organizer=me, creator=me,
                     zone_name=self.zone_name, start=at(14, 15), end=at(14, 16, 30), description=review,
                     location="Main hall", meet=True,
                     attendees=[{**me, "organizer": True, "responseStatus": "accepted"}, *guests]))
        add(Template(self.series_id("offsite"), "Company offsite", "single", organizer=me, creator=me,
                     start=date(2025, 3, 20), end=date(2025, 3, 22), location="Lakeside lodge"))

        team_id = f"c_{base32hex(name, 'team', length=32)}@group.calendar.google.com"
        team = Calendar(team_id, "Projects", self.zone_name, "writer", ("7", "#42d692"),
                        description=f"Releases and reviews of {domain}")
        team_organizer = {"email": team_id, "displayName": "Projects"}
        team.templates.append(
            Template(self.series_id("release"), "Release review", "weekly", organizer=team_organizer,
                     creator=first, zone_name=self.zone_name, weekdays=[3], at=time(16), minutes=60,
                     attendees=[{**me, "responseStatus": "accepted"}, {**second, "responseStatus": "accepted"}]))

        holidays = Calendar(HOLIDAYS, "Holidays in United States", self.zone_name, "reader", ("8", "#16a765"),
                            description="Holidays and Observances in United States")
        holiday_organizer = {"email": HOLIDAYS, "displayName": "Holidays in United States"}
        for month_day, title in [((1, 1), "New Year's Day"), ((7, 4), "Independence Day"),
                                 ((12, 25), "Christmas Day")]:
            holidays.templates.append(
                Template(base32hex("holiday", title), title, "yearly", organizer=holiday_organizer,
                         creator=holiday_organizer, month_day=month_day, description="Public holiday",
                         transparent=True))

        self.calendars = [primary, team, holidays]

    def series_id(self, what):
        return base32hex(self.name, what)

    def calendar(self, ident):
        """One of this user's calendars by id (`primary` too), or None."""
        for calendar in self.calendars:
            if ident == calendar.id or (ident == "primary" and calendar.primary):
                return calendar
        return None


# --------------------------------------------------------------------------
# Who is calling
# --------------------------------------------------------------------------


class StaticTokens:
    def __init__(self, tokens):
        self.tokens = tokens

    def user_of(self, token):
        return self.tokens.get(token)


class Introspection:
    """RFC 7662: ask the authorization server about every token."""

    def __init__(self, url, client_id, client_secret):
        self.url = url
        # client_secret_basic: each part form-encoded, then base64 (RFC 6749
        # section 2.3.1).
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
        self.authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        # The endpoint is local: no proxy from the environment may sit between.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def user_of(self, token):
        request = urllib.request.Request(
            self.url,
            data=urlencode({"token": token}).encode(),
            method="POST",
            headers={"Authorization": self.authorization, "Accept": "application/json",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with self.opener.open(request, timeout=5) as answer:
                verdict = json.load(answer)
        except (urllib.error.URLError, OSError, ValueError) as e:
            sys.stderr.write(f"google upstream: introspection failed: {e!r}\n")
            raise ApiError(503, "The service is currently unavailable.", "backendError", status="UNAVAILABLE")
        if not isinstance(verdict, dict) or verdict.get("active") is not True:
            return None
        sub = verdict.get("sub")
        return sub if isinstance(sub, str) and sub else None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.unauthorized = 0
        # Tokens accepted so far, and those refused since /_test/distrust.
        self.seen = set()
        self.distrusted = set()

    def accepts(self, token):
        with self.lock:
            if token in self.distrusted:
                return False
            self.seen.add(token)
            return True

    def distrust(self):
        with self.lock:
            self.distrusted |= self.seen

    def count(self, status):
        with self.lock:
            self.requests += 1
            if status == 401:
                self.unauthorized += 1

    def snapshot(self):
        with self.lock:
            return {"requests": self.requests, "unauthorized": self.unauthorized}


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------


def page(items, size, token, key):
    """Items from the offset `token` names, `size` of them, and the token of
    the next page (which only a query with the same `key` may use)."""
    offset = 0
    if token is not None:
        try:
            state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            offset = int(state["o"])
            if state["k"] != key or offset < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise invalid("pageToken")
    chunk = items[offset:offset + size]
    more = offset + size < len(items)
    following = None
    if more:
        following = base64.urlsafe_b64encode(json.dumps({"o": offset + size, "k": key}).encode()).decode().rstrip("=")
    return chunk, following


def page_size(raw, default, largest, location):
    """maxResults: Google refuses values below 1 and quietly caps large ones."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(location, f"Invalid value '{raw}'. Values must be within the range: [1, {largest}]")
    if value < 1:
        raise invalid(location, f"Invalid value '{raw}'. Values must be within the range: [1, {largest}]")
    return min(value, largest)


def flag(raw, location):
    if raw is None:
        return False
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise invalid(location, f"Invalid boolean value: '{raw}'.")


def key_of(*parts):
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


class Handler(serving.ApiHandler):
    log_name = "google upstream"
    server_version = "ESF"
    sys_version = ""
    auth = None
    users = {}
    users_lock = threading.Lock()
    stats = Stats()

    def send_json(self, status, body, headers=()):
        data = json.dumps(body, ensure_ascii=False, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "private, max-age=0, must-revalidate, no-transform")
        self.send_header("Vary", "Origin, X-Origin, Referer")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_page_not_found(self, path):
        data = (
            "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n"
            f"  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>{path}</code> was not "
            "found on this server.  <ins>That’s all we know.</ins>\n"
        ).encode()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_api(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path == "/_test/requests" and method == "GET":
            return self.send_json(200, self.stats.snapshot())
        if url.path == "/_test/distrust" and method == "POST":
            self.stats.distrust()
            return self.send_json(200, {})
        try:
            result = self.route(method, url, raw)
        except PageNotFound:
            self.stats.count(404)
            return self.send_page_not_found(url.path)
        except ApiError as e:
            self.stats.count(e.code)
            return self.send_json(e.code, e.body(), e.headers)
        except Exception as e:  # a bug here should not look like a hang
            sys.stderr.write(f"google upstream: internal error: {e!r}\n")
            self.stats.count(500)
            error = ApiError(500, "Backend Error", "backendError", status="INTERNAL")
            return self.send_json(500, error.body())
        self.stats.count(200)
        self.send_json(200, result)

    def user(self):
        """The caller, from its bearer token; 401 as Google answers it."""
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated(token_given=bool(scheme))
        name = self.auth.user_of(token)
        if name is None or not self.stats.accepts(token):
            raise unauthenticated(token_given=True)
        with self.users_lock:
            if name not in self.users:
                self.users[name] = User(name)
            return self.users[name]

    def someone(self, email):
        with self.users_lock:
            return next((u for u in self.users.values() if u.email == email.lower()), None)

    def route(self, method, url, raw):
        segments = url.path.split("/")[1:]
        if tuple(segments[:2]) != API or any(s == "" for s in segments):
            raise PageNotFound()
        # Google answers a URL no method serves before it looks at the token.
        endpoint = self.endpoint(method, [unquote(s) for s in segments[2:]])
        if endpoint is None:
            raise PageNotFound()
        user = self.user()
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        body = None
        if method == "POST":
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise ApiError(400, "Parse Error", "parseError")
            if not isinstance(body, dict):
                raise ApiError(400, "Parse Error", "parseError")
        with user.lock:
            return endpoint(user, query, body)

    def endpoint(self, method, route):
        """The route's handler, called with (user, query, body), or None."""
        if route == ["users", "me", "calendarList"] and method == "GET":
            return self.calendar_list
        if route == ["freeBusy"] and method == "POST":
            return self.free_busy
        if len(route) in (3, 4) and route[0] == "calendars" and route[2] == "events":
            if len(route) == 3 and method == "GET":
                return partial(self.list_events, calendar_id=route[1])
            if len(route) == 3 and method == "POST":
                return partial(self.insert_event, calendar_id=route[1])
            if len(route) == 4 and method == "GET":
                return partial(self.get_event, calendar_id=route[1], event_id=route[3])
        return None

    @staticmethod
    def calendar_of(user, ident):
        calendar = user.calendar(ident)
        if calendar is None:
            raise not_found()
        return calendar

    # ---- routes

    def calendar_list(self, user, query, body):
        size = page_size(query.get("maxResults"), 100, MAX_CALENDARS_PER_PAGE, "maxResults")
        entries = [c.list_entry() for c in user.calendars]
        chunk, following = page(entries, size, query.get("pageToken"), key_of("calendarList"))
        answer = {"kind": "calendar#calendarList", "etag": etag("list", user.name, len(entries))}
        if following:
            answer["nextPageToken"] = following
        else:
            answer["nextSyncToken"] = base64.urlsafe_b64encode(digest("sync", user.name)[:12]).decode()
        answer["items"] = chunk
        return answer

    def list_events(self, user, query, body, calendar_id):
        calendar = self.calendar_of(user, calendar_id)
        low = instant(query["timeMin"], "timeMin") if "timeMin" in query else None
        high = instant(query["timeMax"], "timeMax") if "timeMax" in query else None
        if low is not None and high is not None and high <= low:
            raise time_range_empty()
        expand = flag(query.get("singleEvents"), "singleEvents")
        order = query.get("orderBy")
        if order not in (None, "startTime", "updated"):
            raise invalid("orderBy")
        if order == "startTime" and not expand:
            raise ApiError(400, "The requested ordering is not available for the particular query.", "badRequest")
        size = page_size(query.get("maxResults"), 250, MAX_EVENTS_PER_PAGE, "maxResults")
        out_tz = zone(query["timeZone"], "timeZone") if query.get("timeZone") else calendar.tz
        found = calendar.events(low, high, expand)
        words = (query.get("q") or "").lower().split()
        found = [o for o in found if o.template.matches(words)]
        if order == "startTime":
            found.sort(key=lambda o: (o.bounds(calendar.tz)[0], o.id))
        else:
            found.sort(key=lambda o: (o.template.created, o.id))
        key = key_of(calendar.id, query.get("timeMin"), query.get("timeMax"), expand, order, query.get("q"),
                     query.get("timeZone"))
        chunk, following = page(found, size, query.get("pageToken"), key)
        answer = {
            "kind": "calendar#events",
            "etag": etag("events", calendar.id, len(calendar.templates)),
            "summary": calendar.summary,
            "description": calendar.description or "",
            "updated": max((t.created for t in calendar.templates), default=SEEDED),
            "timeZone": calendar.zone_name,
            "accessRole": calendar.access_role,
            "defaultReminders": calendar.list_entry()["defaultReminders"],
        }
        if following:
            answer["nextPageToken"] = following
        else:
            answer["nextSyncToken"] = base64.urlsafe_b64encode(digest("sync", calendar.id)[:12]).decode()
        answer["items"] = [o.json(calendar, user, out_tz) for o in chunk]
        return answer

    def get_event(self, user, query, body, calendar_id, event_id):
        calendar = self.calendar_of(user, calendar_id)
        out_tz = zone(query["timeZone"], "timeZone") if query.get("timeZone") else calendar.tz
        found = calendar.find(event_id)
        if found is None:
            raise not_found()
        return found.json(calendar, user, out_tz)

    def free_busy(self, user, query, body):
        for name in ("timeMin", "timeMax"):
            if name not in body:
                raise required(f"Missing {name} parameter.", location=name)
        low = instant(body["timeMin"], "timeMin")
        high = instant(body["timeMax"], "timeMax")
        if high <= low:
            raise time_range_empty()
        items = body.get("items", [])
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str)
                                                  for i in items):
            raise invalid("items")
        if len(items) > MAX_FREE_BUSY_ITEMS:
            raise ApiError(400, "Too many calendars requested.", "tooManyCalendarsRequested", domain="calendar")
        out_tz = zone(body["timeZone"], "timeZone") if body.get("timeZone") else timezone.utc
        calendars = {}
        for item in items:
            ident = item["id"]
            calendar = user.calendar(ident)
            if calendar is None:
                other = self.someone(ident)
                calendar = other.calendar("primary") if other is not None else None
            if calendar is None:
                calendars[ident] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            calendars[ident] = {"busy": [{"start": written(s, out_tz), "end": written(e, out_tz)}
                                         for s, e in calendar.busy(low, high)]}
        return {"kind": "calendar#freeBusy", "timeMin": stamp(low), "timeMax": stamp(high), "calendars": calendars}

    def insert_event(self, user, query, body, calendar_id):
        calendar = self.calendar_of(user, calendar_id)
        updates = query.get("sendUpdates")
        if updates is not None and updates not in ("all", "externalOnly", "none"):
            raise invalid("sendUpdates")
        if calendar.access_role not in ("owner", "writer"):
            raise ApiError(403, "You need to have writer access to this calendar.", "requiredAccessLevel",
                           domain="calendar")
        start, start_zone = self.event_time(body.get("start"), "start")
        end, end_zone = self.event_time(body.get("end"), "end")
        if isinstance(start, datetime) != isinstance(end, datetime):
            raise ApiError(400, "Start and end times must either both be date or both be dateTime.", "invalid")
        if end <= start:
            raise time_range_empty(location=None)
        for name in ("summary", "description", "location"):
            if name in body and not isinstance(body[name], str):
                raise invalid(name)
        attendees = body.get("attendees", [])
        if not isinstance(attendees, list):
            raise invalid("attendees")
        me = {"email": user.email}
        organizer = me if calendar.primary else {"email": calendar.id, "displayName": calendar.summary}
        invited = []
        for attendee in attendees:
            email = attendee.get("email") if isinstance(attendee, dict) else None
            if not isinstance(email, str) or not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
                raise ApiError(400, "Invalid attendee email.", "invalid")
            invited.append({"email": email.lower(), "responseStatus": "needsAction"})
        if invited and not any(a["email"] == organizer["email"] for a in invited):
            # Google lists the organizer among the attendees of an invitation.
            invited.insert(0, {**organizer, "organizer": True, "responseStatus": "accepted"})
        user.created += 1
        now = datetime.now(timezone.utc)
        template = Template(
            base32hex(user.name, calendar.id, "created", user.created), body.get("summary"), "single",
            organizer=organizer, creator=me, zone_name=start_zone or end_zone, start=start, end=end,
            description=body.get("description"), location=body.get("location"), attendees=invited,
            created=stamp(now),
        )
        calendar.templates.append(template)
        return Occurrence(template, template.id, start, end).json(calendar, user, calendar.tz)

    @staticmethod
    def event_time(value, which):
        """An EventDateTime: (aware datetime or date, zone name or None)."""
        if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
            raise required(f"Missing {which} time.")
        zone_name = value.get("timeZone")
        if zone_name is not None:
            zone(zone_name, f"{which} time")
        if value.get("dateTime") is not None:
            moment = parse_date_time(value["dateTime"])
            if moment is None:
                raise invalid(f"{which}.dateTime", f"Invalid {which} time.")
            if moment.tzinfo is None:
                if zone_name is None:
                    raise required(f"Missing time zone definition for {which} time.")
                moment = moment.replace(tzinfo=ZoneInfo(zone_name))
            return moment.astimezone(timezone.utc), zone_name
        text = value["date"]
        if not isinstance(text, str) or not DATE.match(text):
            raise invalid(f"{which}.date", f"Invalid {which} time.")
        try:
            return date.fromisoformat(text), None
        except ValueError:
            raise invalid(f"{which}.date", f"Invalid {which} time.")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--tokens", help='JSON object mapping bearer tokens to users, e.g. {"ya29.a": "alice"}')
    how.add_argument("--introspect", metavar="URL", help="RFC 7662 introspection endpoint that judges every token")
    parser.add_argument("--client-id", help="this API's client id at the introspection endpoint")
    parser.add_argument("--client-secret", help="its client secret (sent with HTTP basic authentication)")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args()
    if args.tokens is not None:
        tokens = json.loads(args.tokens)
        if not isinstance(tokens, dict) or not all(isinstance(v, str) and v for v in tokens.values()):
            parser.error("--tokens must be a JSON object of token -> user")
        args.auth = StaticTokens(tokens)
        args.users = sorted(set(tokens.values()))
    else:
        if not args.client_id or not args.client_secret:
            parser.error("--introspect needs --client-id and --client-secret")
        args.auth = Introspection(args.introspect, args.client_id, args.client_secret)
        args.users = []
    return args


def main():
    args = parse_args()
    try:
        for name in ZONES:
            ZoneInfo(name)
    except ZoneInfoNotFoundError as e:
        sys.exit(f"google upstream: the system time zone database is missing ({e}); install tzdata")
    Handler.auth = args.auth
    Handler.users = {name: User(name) for name in args.users}
    Handler.verbose = args.verbose
    serving.serve(Handler, args.port)


if __name__ == "__main__":
    main()
