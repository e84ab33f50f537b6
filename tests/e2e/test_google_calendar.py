"""The google_calendar module end to end: tokens added through the CLI, calls
through the official MCP client, the Calendar API served locally by
tests/e2e/upstreams/google.py.

Each test gets a home with the bundled modules and the committed lock, and an
mcpist.toml whose `[upstreams]` send www.googleapis.com to the local server,
which the owner allows to resolve to 127.0.0.1 with `mcpist plugins host ...
--allow-private`. The local API tells accounts apart by token (static tokens,
or an RFC 7662 introspection endpoint), and builds each user's calendars from
their name: alice's primary calendar is alice@example.com, in her own zone.
"""

import base64
import json
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx2
import pytest
from mcp import Client

from support import mcpist, python_upstream, serve, serving, text_of

TOKENS = {"ya29.personal_7777cccc": "alice", "ya29.work_8888dddd": "alice@acme.example"}
REFUSED = "ya29.revoked_9999eeee"
HOLIDAYS = "en.usa#holiday@group.v.calendar.google.com"
MODULE = "google_calendar"


@pytest.fixture
def google():
    with python_upstream("google", TOKENS) as url:
        yield url


def configure(home, api):
    """The owner's setup: the upstream override and the host rule."""
    (home / "mcpist.toml").write_text(
        "[log]\n"
        'file = "mcpist.log"\n'
        "[upstreams]\n"
        f'"www.googleapis.com" = "{api}"\n'
    )
    out = mcpist(home, "plugins", "host", MODULE, "https://www.googleapis.com", "--allow-private").stdout
    assert "private addresses allowed" in out


@pytest.fixture
def owner(home, google):
    configure(home, google)
    added = mcpist(home, "account", "add", "google", "personal", stdin="ya29.personal_7777cccc\n").stdout
    assert "It is the default google account." in added
    mcpist(home, "account", "add", "google", "work", stdin="ya29.work_8888dddd\n")
    return home


def local(zone, *fields):
    """An RFC 3339 date-time at `zone`'s offset on that day."""
    return datetime(*fields, tzinfo=ZoneInfo(zone)).isoformat()


def requests_seen(api):
    return httpx2.get(f"{api}/_test/requests").json()


def call(client, tool, arguments=None, account=None):
    params = {"module": MODULE, "tool": tool, "arguments": arguments or {}}
    if account is not None:
        params["account"] = account
    return client.call_tool("call_module_tool", params)


async def ok(client, tool, arguments=None, account=None):
    result = await call(client, tool, arguments, account)
    assert not result.is_error, text_of(result)
    return result.structured_content


async def refused(client, tool, arguments=None, account=None):
    result = await call(client, tool, arguments, account)
    assert result.is_error, result.structured_content
    return text_of(result)


def assert_no_secret(home, *texts, secrets=(*TOKENS, REFUSED)):
    """No token anywhere: not in answers, the log, or the files on disk."""
    files = [p for p in home.iterdir() if p.is_file() and p.suffix in (".toml", ".log", ".lock", ".enc")]
    haystack = "\n".join([*texts, *(p.read_bytes().decode("utf-8", "replace") for p in files)])
    for secret in secrets:
        assert secret not in haystack


async def primary_zone(client, account=None):
    listed = await ok(client, "list_calendars", account=account)
    (primary,) = [c for c in listed["calendars"] if c["primary"]]
    return primary, listed


@pytest.mark.anyio
async def test_the_module_is_described_with_its_account_and_flags(owner):
    async with Client(serve(owner)) as client:
        schema = await client.call_tool("get_module_schema", {"module": MODULE})
    (module,) = schema.structured_content["modules"]
    assert module["accounts"] == [{"service": "google", "accounts": ["personal", "work"], "default": "personal"}]
    tools = {t["name"]: t for t in module["tools"]}
    assert set(tools) == {"list_calendars", "list_events", "get_event", "find_free_busy", "create_event"}
    for name in ("list_calendars", "list_events", "get_event", "find_free_busy"):
        assert tools[name]["annotations"] == {
            "readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": True,
        }, name
    assert tools["create_event"]["annotations"] == {
        "readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": True,
    }
    assert tools["list_events"]["inputSchema"]["required"] == ["timeMin", "timeMax"]
    assert tools["list_events"]["inputSchema"]["properties"]["maxResults"]["maximum"] == 2500


@pytest.mark.anyio
async def test_calendars_and_a_week_of_events(owner):
    async with Client(serve(owner, log_level="trace")) as client:
        primary, listed = await primary_zone(client)
        assert primary["id"] == "alice@example.com" and primary["accessRole"] == "owner"
        calendars = {c["id"]: c for c in listed["calendars"]}
        assert calendars[HOLIDAYS]["accessRole"] == "reader"
        assert calendars[HOLIDAYS]["summary"] == "Holidays in United States"
        assert listed["nextPageToken"] is None
        zone = primary["timeZone"]

        week = {"timeMin": local(zone, 2025, 3, 10), "timeMax": local(zone, 2025, 3, 17)}
        events = await ok(client, "list_events", {**week, "maxResults": 100})
        assert events["calendarId"] == "primary" and events["timeZone"] == zone
        counts = Counter(e["summary"] for e in events["events"])
        assert [s for s in counts if s.startswith("1:1 with ")], counts
        assert {s: n for s, n in counts.items() if not s.startswith("1:1")} == {
            "Daily standup": 5, "Lunch walk": 7, "Weekly planning": 1, "Focus time": 1, "Quarterly review": 1,
        }
        starts = [datetime.fromisoformat(e["start"]) for e in events["events"]]
        assert starts == sorted(starts), "occurrences come in order of start"
        standup = next(e for e in events["events"] if e["summary"] == "Daily standup")
        assert standup["start"] == local(zone, 2025, 3, 10, 9, 30) and standup["allDay"] is False
        assert {"email": "alice@example.com", "responseStatus": "accepted", "self": True} in standup["attendees"]
        assert next(e for e in events["events"] if e["summary"] == "Focus time")["eventType"] == "focusTime"
        review = next(e for e in events["events"] if e["summary"] == "Quarterly review")
        assert review["descriptionTruncated"] is True and len(review["description"]) == 500
        assert len(review["attendees"]) == 20 and review["attendeesNotShown"] == 4

        # Pages: the second starts where the first stopped.
        first = await ok(client, "list_events", {**week, "maxResults": 10})
        assert len(first["events"]) == 10 and first["nextPageToken"]
        rest = await ok(client, "list_events", {**week, "maxResults": 10, "pageToken": first["nextPageToken"]})
        assert rest["nextPageToken"] is None
        assert [e["id"] for e in first["events"] + rest["events"]] == [e["id"] for e in events["events"]]

        found = await ok(client, "list_events", {**week, "q": "standup"})
        assert [e["summary"] for e in found["events"]] == ["Daily standup"] * 5

        # A calendar id with `#` and `@` travels as one path segment.
        july = {"timeMin": local(zone, 2025, 7, 1), "timeMax": local(zone, 2025, 7, 8)}
        holidays = await ok(client, "list_events", {**july, "calendarId": HOLIDAYS})
        assert [(e["summary"], e["start"], e["end"], e["allDay"]) for e in holidays["events"]] == [
            ("Independence Day", "2025-07-04", "2025-07-05", True)
        ]

        whole = await ok(client, "get_event", {"eventId": review["id"]})
        assert len(whole["description"]) > 500 and "descriptionTruncated" not in whole
        assert len(whole["attendees"]) == 24
        assert whole["hangoutLink"].startswith("https://meet.google.com/")
        occurrence = await ok(client, "get_event", {"eventId": standup["id"], "timeZone": "UTC"})
        assert occurrence["recurringEventId"] and occurrence["start"].endswith("Z")
        texts = [json.dumps(x) for x in (listed, events, first, rest, found, holidays, whole, occurrence)]
    assert_no_secret(owner, *texts)
    log = (owner / "mcpist.log").read_text()
    assert "outbound request" in log, "the trace log shows each request, without its credential"


@pytest.mark.anyio
async def test_free_slots_across_calendars_and_a_new_event(owner):
    async with Client(serve(owner)) as client:
        primary, listed = await primary_zone(client)
        zone = primary["timeZone"]
        (team,) = [c for c in listed["calendars"] if c["summary"] == "Projects"]
        assert team["accessRole"] == "writer"
        day = {"timeMin": local(zone, 2025, 3, 12, 9), "timeMax": local(zone, 2025, 3, 12, 17)}
        ids = ["primary", team["id"], HOLIDAYS, "nobody@example.com"]
        busy = await ok(client, "find_free_busy", {**day, "calendarIds": ids, "timeZone": zone, "minSlotMinutes": 30})
        at = lambda h, m=0: local(zone, 2025, 3, 12, h, m)  # noqa: E731
        calendars = {c["id"]: c for c in busy["calendars"]}
        # The lunch walk is marked free: it is listed, but does not block.
        assert calendars["primary"] == {"id": "primary", "errors": [], "busy": [
            {"start": at(9, 30), "end": at(9, 45)}, {"start": at(11), "end": at(11, 30)},
            {"start": at(13), "end": at(15)}]}
        assert calendars[HOLIDAYS]["busy"] == [] and calendars[HOLIDAYS]["errors"] == []
        assert calendars["nobody@example.com"] == {"id": "nobody@example.com", "busy": [], "errors": ["notFound"]}
        assert [(s["start"], s["end"], s["minutes"]) for s in busy["free"]] == [
            (at(9), at(9, 30), 30), (at(9, 45), at(11), 75), (at(11, 30), at(13), 90), (at(15), at(17), 120)]
        assert "nobody@example.com (notFound)" in busy["note"]

        # Someone else in the domain shares free/busy: readable, not an error.
        other = await ok(client, "find_free_busy", {
            "timeMin": local(zone, 2025, 3, 10), "timeMax": local(zone, 2025, 3, 15),
            "calendarIds": ["alice@acme.example"]})
        assert other["calendars"][0]["errors"] == [] and other["calendars"][0]["busy"]

        created = await ok(client, "create_event", {
            "summary": "Plan the offsite", "location": "Room 7",
            "start": {"dateTime": "2025-03-12T10:00:00", "timeZone": zone},
            "end": {"dateTime": "2025-03-12T10:45:00", "timeZone": zone},
            "attendees": ["dana@example.com"]})
        assert created["start"] == at(10) and created["end"] == at(10, 45)
        assert created["organizer"] == "alice@example.com"
        assert {"email": "dana@example.com", "responseStatus": "needsAction"} in created["attendees"]
        assert (await ok(client, "get_event", {"eventId": created["id"]}))["summary"] == "Plan the offsite"
        # 09:45-10:00 and 10:45-11:00 are left: too short for half an hour.
        after = await ok(client, "find_free_busy", {**day, "minSlotMinutes": 30})
        assert [(s["start"], s["end"]) for s in after["free"]] == [
            (at(9), at(9, 30)), (at(11, 30), at(13)), (at(15), at(17))]

        all_day = await ok(client, "create_event", {
            "calendarId": team["id"], "summary": "Release freeze",
            "start": {"date": "2025-03-24"}, "end": {"date": "2025-03-26"}, "sendUpdates": "all"})
        assert all_day["allDay"] is True and all_day["organizer"] == team["id"]
        listed_team = await ok(client, "list_events", {
            "calendarId": team["id"], "timeMin": local(zone, 2025, 3, 24), "timeMax": local(zone, 2025, 3, 25)})
        assert "Release freeze" in [e["summary"] for e in listed_team["events"]]


@pytest.mark.anyio
async def test_mistakes_are_explained_before_or_by_google(owner, google):
    async with Client(serve(owner)) as client:
        before = requests_seen(google)
        empty = await refused(client, "list_events",
                              {"timeMin": "2025-03-12T10:00:00+01:00", "timeMax": "2025-03-12T09:00:00Z"})
        assert "timeMax (2025-03-12T09:00:00Z) must be later than timeMin (2025-03-12T10:00:00+01:00)" in empty
        offsetless = await refused(client, "find_free_busy",
                                   {"timeMin": "2025-03-12T09:00:00", "timeMax": "2025-03-12T17:00:00Z"})
        assert "has no UTC offset" in offsetless
        one_day = await refused(client, "create_event", {
            "summary": "x", "start": {"date": "2025-03-12"}, "end": {"date": "2025-03-12"}})
        assert "a one-day event on 2025-03-12 ends on 2025-03-13" in one_day
        too_many = await refused(client, "list_events", {
            "timeMin": "2025-03-12T00:00:00Z", "timeMax": "2025-03-13T00:00:00Z", "maxResults": 5000})
        assert "maxResults" in too_many
        assert requests_seen(google) == before, "refused before any request"

        missing = await refused(client, "list_events", {
            "calendarId": "nobody@example.com", "timeMin": "2025-03-12T00:00:00Z",
            "timeMax": "2025-03-13T00:00:00Z"})
        assert "Google Calendar answered HTTP 404 notFound" in missing
        assert 'No calendar "nobody@example.com" is visible to this account' in missing
        gone = await refused(client, "get_event", {"eventId": "nope"})
        assert 'No event "nope" in calendar "primary"' in gone
        read_only = await refused(client, "create_event", {
            "calendarId": HOLIDAYS, "summary": "Day off",
            "start": {"date": "2025-03-12"}, "end": {"date": "2025-03-13"}})
        assert "HTTP 403 requiredAccessLevel: You need to have writer access to this calendar." in read_only
        assert f'may not change calendar "{HOLIDAYS}"' in read_only


@pytest.mark.anyio
async def test_two_accounts_are_told_apart(owner):
    async with Client(serve(owner)) as client:
        personal, _ = await primary_zone(client)
        work, _ = await primary_zone(client, account="work")
        assert (personal["id"], work["id"]) == ("alice@example.com", "alice@acme.example")

        zone = work["timeZone"]
        span = {"timeMin": local(zone, 2025, 3, 18), "timeMax": local(zone, 2025, 3, 19)}
        created = await ok(client, "create_event", {
            "summary": "Work only", "start": {"dateTime": local(zone, 2025, 3, 18, 16)},
            "end": {"dateTime": local(zone, 2025, 3, 18, 17)}}, account="work")
        assert created["organizer"] == "alice@acme.example"
        at_work = await ok(client, "list_events", {**span, "q": "work only"}, account="work")
        assert [e["id"] for e in at_work["events"]] == [created["id"]]
        # Written with the work token, so the personal calendar does not have it.
        at_home = await ok(client, "list_events", {**span, "q": "work only"})
        assert at_home["events"] == []
        hidden = await refused(client, "get_event", {"eventId": created["id"]})
        assert "HTTP 404" in hidden


@pytest.mark.anyio
async def test_a_refused_token_says_which_account_to_mend(owner, google):
    mcpist(owner, "account", "add", "google", "stale", stdin=REFUSED + "\n")
    async with Client(serve(owner, log_level="trace")) as client:
        before = requests_seen(google)
        message = await refused(client, "list_calendars", account="stale")
        after = requests_seen(google)
        assert message.count("Google Calendar answered HTTP 401 authError: Request had invalid authentication") == 1
        assert "Google refused the token stored for the google account `stale`" in message
        assert "Store a valid one with `mcpist account add google stale`." in message
        # One request, refused once: a static token is not retried.
        assert after == {"requests": before["requests"] + 1, "unauthorized": before["unauthorized"] + 1}
        # The other accounts keep working.
        await ok(client, "list_calendars")
    assert_no_secret(owner, message)


class Introspector(BaseHTTPRequestHandler):
    """An RFC 7662 endpoint for the resource server `calendar-api`: tokens in
    `active` map to their subject, every other token is inactive."""

    active = {}
    asked = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        expected = "Basic " + base64.b64encode(b"calendar-api:api-secret").decode()
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if self.headers.get("Authorization") != expected:
            status, body = 401, {"error": "invalid_client"}
        else:
            token = form.get("token", [""])[0]
            self.asked.append(token)
            sub = self.active.get(token)
            status = 200
            body = {"active": True, "sub": sub, "client_id": "mcpist", "token_type": "Bearer",
                    "scope": "https://www.googleapis.com/auth/calendar"} if sub else {"active": False}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def introspection():
    Introspector.active = {"ya29.carol_live_1234": "carol"}
    Introspector.asked = []
    with serving(Introspector) as url:
        yield f"{url}/introspect"


@pytest.mark.anyio
async def test_an_introspected_token_works_until_the_provider_says_it_is_not_active(home, introspection):
    options = ["--introspect", introspection, "--client-id", "calendar-api", "--client-secret", "api-secret"]
    with python_upstream("google", args=options) as api:
        configure(home, api)
        mcpist(home, "account", "add", "google", "carol", stdin="ya29.carol_live_1234\n")
        async with Client(serve(home)) as client:
            primary, _ = await primary_zone(client)
            assert primary["id"] == "carol@example.com"
            # Every request was judged by the provider, with this token.
            assert Introspector.asked == ["ya29.carol_live_1234"]
            Introspector.active.clear()
            message = await refused(client, "list_calendars")
            assert "HTTP 401 authError" in message
            assert "`mcpist account add google carol`" in message
        assert requests_seen(api) == {"requests": 2, "unauthorized": 1}
    assert_no_secret(home, message, secrets=["ya29.carol_live_1234"])
