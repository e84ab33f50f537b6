#!/usr/bin/env python3
"""A local stand-in for api.notion.com, for tests.

It speaks the real REST routes (API version 2022-06-28) the `notion` module
uses, with Notion's object shapes, error bodies and cursor pagination, over
plain HTTP on 127.0.0.1. Each bearer token maps to a workspace with its own
deterministic pages, blocks and database, so a test can tell which account's
token arrived ("workspace-b" gets different content from every other name).

    python3 tests/e2e/upstreams/notion.py --port 0 \
        --tokens '{"secret_tok_a": "workspace-a", "secret_tok_b": "workspace-b"}'

prints exactly one line, `listening on <port>`, once it accepts connections,
and serves until it is killed (SIGTERM and SIGINT exit cleanly).

Routes:
    POST  /v1/search
    GET   /v1/pages/{id}
    POST  /v1/pages
    GET   /v1/blocks/{id}/children      (page_size, start_cursor)
    PATCH /v1/blocks/{id}/children      (append)
    GET   /v1/databases/{id}
    POST  /v1/databases/{id}/query      (filter subset, sorts, pagination)
    GET   /v1/users/me

Ids are UUIDs with dashes in answers and are accepted with or without dashes
in paths and bodies. Cursors are the id of the first item of the next page,
as Notion's are. Objects created with POST /v1/pages or PATCH are kept (in
memory, per workspace) so later searches and reads see them.

Python standard library only.
"""

import copy
import json
import re
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from functools import cmp_to_key
from urllib.parse import parse_qsl, urlsplit

import serving

API_VERSION = "2022-06-28"
# Versions the real API accepts; 2022-06-28 is the one the module sends.
KNOWN_VERSIONS = {"2021-05-13", "2021-08-16", "2022-02-22", "2022-06-28", "2025-09-03"}
WEB = "https://www.notion.so"
NAMESPACE = uuid.UUID("0b5e7f6c-4a1d-4c55-9a57-6e0f7a1c2d3e")
MAX_TEXT = 2000
MAX_CHILDREN = 100
SHARE_HINT = "Make sure the relevant pages and databases are shared with your integration."


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def validation(message):
    return ApiError(400, "validation_error", message)


def not_found(kind, ident):
    return ApiError(404, "object_not_found", f"Could not find {kind} with ID: {ident}. {SHARE_HINT}")


def shown(value):
    """A value quoted the way Notion's validation messages quote it."""
    if value is None:
        return "undefined"
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")


def parse_uuid(raw):
    """The dashed, lower-case form of `raw`, or None."""
    if not isinstance(raw, str):
        return None
    digits = raw.replace("-", "")
    if not HEX32.match(digits):
        return None
    d = digits.lower()
    return f"{d[0:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:32]}"


def stable_id(*parts):
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


def stamp(day, hour=9, minute=0):
    """An ISO 8601 timestamp in 2024, as Notion writes them (`.000Z`)."""
    t = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(days=day - 1, hours=hour, minutes=minute)
    return t.strftime("%Y-%m-%dT%H:%M:00.000Z")


def now():
    # Notion rounds edit times to the minute.
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:00.000Z")


def utf16_len(text):
    return len(text.encode("utf-16-le")) // 2


ANNOTATIONS = {
    "bold": False,
    "italic": False,
    "strikethrough": False,
    "underline": False,
    "code": False,
    "color": "default",
}


def text_item(content, link=None, **annotations):
    return {
        "type": "text",
        "text": {"content": content, "link": {"url": link} if link else None},
        "annotations": {**ANNOTATIONS, **annotations},
        "plain_text": content,
        "href": link,
    }


def rich(*parts):
    """A rich text array from strings and ready-made items."""
    return [text_item(p) if isinstance(p, str) else p for p in parts]


def plain(rich_text):
    return "".join(item.get("plain_text", "") for item in rich_text or [])


def slug(title):
    s = re.sub(r"[^0-9A-Za-z]+", "-", title).strip("-")
    return s


def page_url(title, ident):
    bare = ident.replace("-", "")
    s = slug(title)
    return f"{WEB}/{s}-{bare}" if s else f"{WEB}/{bare}"


# --------------------------------------------------------------------------
# Workspaces
# --------------------------------------------------------------------------


class Workspace:
    """One integration's view: pages, blocks and databases by id."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.RLock()
        self.bot_id = stable_id(name, "bot")
        self.people = {
            "Ann": stable_id(name, "user", "Ann"),
            "Ben": stable_id(name, "user", "Ben"),
        }
        self.pages = {}      # id -> page record
        self.blocks = {}     # id -> block record
        self.databases = {}  # id -> database record
        self.counter = 0     # for ids of created objects

    # ---- ids and users

    def new_id(self, *parts):
        self.counter += 1
        return stable_id(self.name, *parts, self.counter)

    def user(self, who=None):
        if who is None:
            return {"object": "user", "id": self.bot_id}
        return {"object": "user", "id": self.people[who]}

    def person(self, who):
        return {
            "object": "user",
            "id": self.people[who],
            "name": who,
            "avatar_url": None,
            "type": "person",
            "person": {"email": f"{who.lower()}@{self.name}.example"},
        }

    # ---- building

    def add_page(self, title, parent, day, icon=None, blocks=(), properties=None, key=None):
        """A page under `parent` ({"type": "page_id", ...} etc.)."""
        ident = stable_id(self.name, "page", key or title)
        if properties is None:
            properties = {"title": {"id": "title", "type": "title", "title": rich(title) if title else []}}
        record = {
            "id": ident,
            "parent": parent,
            "created_time": stamp(day),
            "last_edited_time": stamp(day, 15, 30),
            "created_by": self.user("Ann"),
            "last_edited_by": self.user("Ann"),
            "icon": {"type": "emoji", "emoji": icon} if icon else None,
            "properties": properties,
            "children": [],
        }
        self.pages[ident] = record
        self.add_blocks(ident, "page_id", list(blocks), record["created_time"])
        return ident

    def add_blocks(self, parent_id, parent_type, specs, when, by=None):
        """Store block specs (see `B`) as children of `parent_id`."""
        created = []
        owner = self.pages.get(parent_id) or self.blocks.get(parent_id)
        for spec in specs:
            kind = spec["type"]
            if kind in ("child_page", "child_database"):
                ident = spec["id"]
            else:
                ident = self.new_id("block")
            block = {
                "id": ident,
                "parent": {"type": parent_type, parent_type: parent_id},
                "created_time": when,
                "last_edited_time": when,
                "created_by": self.user(by),
                "last_edited_by": self.user(by),
                "type": kind,
                "payload": spec["payload"],
                "children": [],
            }
            self.blocks[ident] = block
            owner["children"].append(ident)
            created.append(ident)
            if spec.get("children"):
                self.add_blocks(ident, "block_id", spec["children"], when, by)
        return created

    def add_database(self, title, parent_page, day, schema, rows, key):
        ident = stable_id(self.name, "database", key)
        properties = {}
        for name, (kind, config) in schema.items():
            pid = "title" if kind == "title" else stable_id(self.name, key, name)[:4]
            properties[name] = {"id": pid, "name": name, "type": kind, kind: config}
        self.databases[ident] = {
            "id": ident,
            "parent": {"type": "page_id", "page_id": parent_page},
            "created_time": stamp(day),
            "last_edited_time": stamp(day + 1, 11),
            "created_by": self.user("Ann"),
            "last_edited_by": self.user("Ann"),
            "title": rich(title),
            "description": rich(f"{title} for {self.name}"),
            "icon": None,
            "properties": properties,
            "view": stable_id(self.name, key, "view"),
        }
        for i, row in enumerate(rows):
            values = {name: self.property_value(prop, row.get(name)) for name, prop in properties.items()}
            self.add_page(
                row["Name"],
                {"type": "database_id", "database_id": ident},
                day + 2 + i,
                properties=values,
                blocks=row.get("_blocks", ()),
                key=f"{key}/row/{i}",
            )
        return ident

    def property_value(self, prop, value):
        """A page's property value, from a plain Python value."""
        kind = prop["type"]
        out = {"id": prop["id"], "type": kind}
        if kind in ("title", "rich_text"):
            out[kind] = rich(value) if value else []
        elif kind in ("select", "status"):
            out[kind] = self.option(prop, value) if value else None
        elif kind == "multi_select":
            out[kind] = [self.option(prop, v) for v in value or []]
        elif kind == "date":
            out[kind] = {"start": value, "end": None, "time_zone": None} if value else None
        elif kind == "checkbox":
            out[kind] = bool(value)
        elif kind == "people":
            out[kind] = [self.person(p) for p in value or []]
        else:
            out[kind] = value
        return out

    def option(self, prop, name):
        options = prop[prop["type"]]["options"]
        for o in options:
            if o["name"] == name:
                return dict(o)
        colors = ["default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red"]
        o = {"id": stable_id(self.name, prop["id"], name)[:8], "name": name, "color": colors[len(options) % len(colors)]}
        options.append(o)
        return dict(o)

    # ---- rendering objects as the API shows them

    def page_title(self, record):
        for prop in record["properties"].values():
            if prop["type"] == "title":
                return plain(prop["title"])
        return ""

    def page_json(self, record):
        return {
            "object": "page",
            "id": record["id"],
            "created_time": record["created_time"],
            "last_edited_time": record["last_edited_time"],
            "created_by": record["created_by"],
            "last_edited_by": record["last_edited_by"],
            "cover": None,
            "icon": record["icon"],
            "parent": record["parent"],
            "archived": False,
            "in_trash": False,
            "properties": copy.deepcopy(record["properties"]),
            "url": page_url(self.page_title(record), record["id"]),
            "public_url": None,
        }

    def database_json(self, record):
        return {
            "object": "database",
            "id": record["id"],
            "cover": None,
            "icon": record["icon"],
            "created_time": record["created_time"],
            "created_by": record["created_by"],
            "last_edited_by": record["last_edited_by"],
            "last_edited_time": record["last_edited_time"],
            "title": copy.deepcopy(record["title"]),
            "description": copy.deepcopy(record["description"]),
            "is_inline": False,
            "properties": copy.deepcopy(record["properties"]),
            "parent": record["parent"],
            "url": f"{WEB}/{record['id'].replace('-', '')}?v={record['view'].replace('-', '')}",
            "public_url": None,
            "archived": False,
            "in_trash": False,
        }

    def block_json(self, record):
        kind = record["type"]
        payload = copy.deepcopy(record["payload"])
        has_children = bool(record["children"])
        if kind == "child_page":
            page = self.pages.get(record["id"])
            if page:
                payload = {"title": self.page_title(page)}
                has_children = bool(page["children"])
        elif kind == "child_database":
            db = self.databases.get(record["id"])
            if db:
                payload = {"title": plain(db["title"])}
            has_children = False
        return {
            "object": "block",
            "id": record["id"],
            "parent": record["parent"],
            "created_time": record["created_time"],
            "last_edited_time": record["last_edited_time"],
            "created_by": record["created_by"],
            "last_edited_by": record["last_edited_by"],
            "has_children": has_children,
            "archived": False,
            "in_trash": False,
            "type": kind,
            kind: payload,
        }

    def touch(self, page_id):
        record = self.pages.get(page_id)
        if record:
            record["last_edited_time"] = now()
            record["last_edited_by"] = self.user()

    def page_of(self, block_id):
        """The page a block belongs to."""
        seen = 0
        ident = block_id
        while ident in self.blocks and seen < 100:
            parent = self.blocks[ident]["parent"]
            ident = parent.get(parent["type"])
            seen += 1
        return ident if ident in self.pages else None


# Block specs for building: {"type", "payload", "children"}.


def B(kind, payload=None, children=()):
    return {"type": kind, "payload": payload if payload is not None else {}, "children": list(children)}


def T(kind, text, children=(), **extra):
    """A text block (paragraph, heading_1, bulleted_list_item, ...)."""
    payload = {"rich_text": rich(text) if isinstance(text, str) else text, "color": "default", **extra}
    if kind.startswith("heading_"):
        payload.setdefault("is_toggleable", False)
    return B(kind, payload, children)


def code(text, language):
    return B("code", {"caption": [], "rich_text": rich(text), "language": language})


def todo(text, checked):
    return T("to_do", text, checked=checked)


def callout(text, emoji):
    return T("callout", text, icon={"type": "emoji", "emoji": emoji})


def bookmark(url, caption=""):
    return B("bookmark", {"caption": rich(caption) if caption else [], "url": url})


def image(url, caption=""):
    return B("image", {"caption": rich(caption) if caption else [], "type": "external", "external": {"url": url}})


def table(rows, header=True):
    width = len(rows[0])
    return B(
        "table",
        {"table_width": width, "has_column_header": header, "has_row_header": False},
        [B("table_row", {"cells": [rich(c) for c in row]}) for row in rows],
    )


def mention_page(page_id, title):
    return {
        "type": "mention",
        "mention": {"type": "page", "page": {"id": page_id}},
        "annotations": dict(ANNOTATIONS),
        "plain_text": title,
        "href": f"{WEB}/{page_id.replace('-', '')}",
    }


def task_schema():
    return {
        "Name": ("title", {}),
        "Status": ("select", {"options": []}),
        "Tags": ("multi_select", {"options": []}),
        "Due": ("date", {}),
        "Done": ("checkbox", {}),
        "Points": ("number", {"format": "number"}),
        "Owner": ("people", {}),
    }


def build_workspace(name):
    ws = Workspace(name)
    ws_parent = {"type": "workspace", "workspace": True}

    # Every workspace has a welcome page naming it, so a test can tell which
    # token arrived with a single search.
    ws.add_page(
        f"Welcome to {name}",
        ws_parent,
        1,
        icon="👋",
        blocks=[T("paragraph", f"This is the {name} workspace.")],
        key="welcome",
    )

    if name == "workspace-b":
        build_b(ws, ws_parent)
    else:
        build_a(ws, ws_parent)
    return ws


def add_schema_db(ws, title, parent, day, rows, key):
    return ws.add_database(title, parent, day, task_schema(), rows, key)


def build_a(ws, ws_parent):
    alpha = stable_id(ws.name, "page", "alpha")
    notes = stable_id(ws.name, "page", "notes")
    tasks = stable_id(ws.name, "database", "tasks")
    blocks = [
        T("heading_1", "Overview"),
        T("paragraph", rich("Project Alpha ships the ", text_item("new importer", bold=True), " in Q2. See ",
                            mention_page(notes, "Meeting Notes"), " for decisions.")),
        T("heading_2", "Goals"),
        T("bulleted_list_item", "Import CSV files", [T("bulleted_list_item", "Up to 10 MB each")]),
        T("bulleted_list_item", "Map columns automatically"),
        T("bulleted_list_item", "Report errors per row"),
        T("heading_3", "Steps"),
        T("numbered_list_item", "Write the parser"),
        T("numbered_list_item", "Write the mapper"),
        todo("Review the design", True),
        todo("Write the migration guide", False),
        T("toggle", "Details", [
            T("paragraph", "The importer runs in the background."),
            code("def parse(row):\n    return row.split(',')", "python"),
            T("toggle", "Even more details", [T("paragraph", "Nested two levels deep.")]),
        ]),
        T("quote", "Simple things should be simple."),
        callout("Deadline is June 30.", "⏰"),
        code("cargo build --release", "shell"),
        B("divider"),
        table([["Metric", "Target"], ["Rows per second", "10000"], ["Error rate", "< 0.1%"]]),
        bookmark("https://developers.notion.com/reference/intro", "Notion API"),
        image("https://images.example.com/alpha-diagram.png", "Architecture diagram"),
        B("equation", {"expression": "e^{i\\pi} + 1 = 0"}),
        B("child_page", {"title": "Meeting Notes"}) | {"id": notes},
        B("child_database", {"title": "Tasks"}) | {"id": tasks},
        T("paragraph", "End of the overview."),
    ]
    ws.add_page("Project Alpha", ws_parent, 2, icon="🚀", blocks=blocks, key="alpha")
    ws.add_page(
        "Meeting Notes",
        {"type": "page_id", "page_id": alpha},
        3,
        blocks=[
            T("heading_2", "2024-01-10"),
            T("paragraph", "Decided to support CSV first."),
            T("bulleted_list_item", "Ann owns the parser"),
            T("bulleted_list_item", "Ben owns the mapper"),
        ],
        key="notes",
    )
    rows = [
        {"Name": "Write the parser", "Status": "Done", "Tags": ["backend"], "Due": "2024-02-01",
         "Done": True, "Points": 5, "Owner": ["Ann"],
         "_blocks": [T("paragraph", "Parser handles quoted fields.")]},
        {"Name": "Write the mapper", "Status": "In progress", "Tags": ["backend", "ml"], "Due": "2024-03-15",
         "Done": False, "Points": 8, "Owner": ["Ben"]},
        {"Name": "Design the UI", "Status": "Not started", "Tags": ["frontend"], "Due": "2024-04-01",
         "Done": False, "Points": 3, "Owner": ["Ann", "Ben"]},
        {"Name": "Write docs", "Status": "Not started", "Tags": ["docs"], "Due": None,
         "Done": False, "Points": 2, "Owner": []},
        {"Name": "Set up CI", "Status": "Done", "Tags": ["ops", "backend"], "Due": "2024-01-20",
         "Done": True, "Points": 1, "Owner": ["Ben"]},
    ]
    add_schema_db(ws, "Tasks", alpha, 2, rows, "tasks")
    # Enough blocks to need several pages of block children.
    ws.add_page(
        "Engineering Log",
        ws_parent,
        20,
        icon="📓",
        blocks=[T("paragraph", f"Log entry {i}") for i in range(1, 251)],
        key="log",
    )


def build_b(ws, ws_parent):
    kitchen = stable_id(ws.name, "page", "kitchen")
    ws.add_page(
        "Recipes",
        ws_parent,
        4,
        icon="🍲",
        blocks=[
            T("heading_1", "Soups"),
            T("paragraph", "Family recipes, tested."),
            T("toggle", "Tomato soup", [
                T("numbered_list_item", "Roast the tomatoes"),
                T("numbered_list_item", "Blend with stock"),
                todo("Buy basil", False),
            ]),
            T("bulleted_list_item", "Serves four"),
            code("oven = 220  # degrees C", "python"),
            B("divider"),
            B("child_page", {"title": "Kitchen Inventory"}) | {"id": kitchen},
        ],
        key="recipes",
    )
    ws.add_page(
        "Kitchen Inventory",
        {"type": "page_id", "page_id": stable_id(ws.name, "page", "recipes")},
        5,
        blocks=[T("bulleted_list_item", "Flour: 2 kg"), T("bulleted_list_item", "Salt: 1 kg")],
        key="kitchen",
    )
    rows = [
        {"Name": "Dune", "Status": "Reading", "Tags": ["scifi"], "Due": "2024-05-01",
         "Done": False, "Points": 4, "Owner": ["Ben"]},
        {"Name": "Middlemarch", "Status": "Done", "Tags": ["classic"], "Due": "2024-02-10",
         "Done": True, "Points": 5, "Owner": ["Ann"]},
        {"Name": "The Hobbit", "Status": "Queued", "Tags": ["fantasy", "classic"], "Due": None,
         "Done": False, "Points": 3, "Owner": []},
    ]
    add_schema_db(ws, "Reading List", stable_id(ws.name, "page", "recipes"), 4, rows, "reading")


# --------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------


BLOCK_TYPES = {
    "paragraph", "heading_1", "heading_2", "heading_3", "bulleted_list_item", "numbered_list_item",
    "to_do", "toggle", "quote", "callout", "code", "divider", "bookmark", "equation", "image", "video",
    "file", "pdf", "embed", "table_of_contents", "breadcrumb", "table", "table_row", "column_list",
    "column", "link_to_page", "synced_block", "template",
}
TEXT_BLOCKS = {
    "paragraph", "heading_1", "heading_2", "heading_3", "bulleted_list_item", "numbered_list_item",
    "to_do", "toggle", "quote", "callout", "code", "template",
}


def rich_text_input(value, where):
    """Rich text from a request, completed as Notion stores it."""
    if not isinstance(value, list):
        raise validation(f"body failed validation: {where} should be an array, instead was `{shown(value)}`.")
    if len(value) > 100:
        raise validation(f"body failed validation: {where}.length should be ≤ `100`, instead was `{len(value)}`.")
    out = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise validation(f"body failed validation: {at} should be an object, instead was `{shown(item)}`.")
        kind = item.get("type", "text")
        if kind != "text" or not isinstance(item.get("text"), dict):
            if kind in ("mention", "equation") and isinstance(item.get(kind), dict):
                out.append({**item, "annotations": {**ANNOTATIONS, **item.get("annotations", {})},
                            "plain_text": item.get("plain_text", ""), "href": item.get("href")})
                continue
            raise validation(f"body failed validation: {at}.text should be defined, instead was `undefined`.")
        content = item["text"].get("content")
        if not isinstance(content, str):
            raise validation(
                f"body failed validation: {at}.text.content should be a string, instead was `{shown(content)}`.")
        if utf16_len(content) > MAX_TEXT:
            raise validation(
                f"body failed validation: {at}.text.content.length should be ≤ `{MAX_TEXT}`, "
                f"instead was `{utf16_len(content)}`.")
        link = item["text"].get("link")
        url = link.get("url") if isinstance(link, dict) else None
        annotations = item.get("annotations") if isinstance(item.get("annotations"), dict) else {}
        out.append(text_item(content, url, **{k: v for k, v in annotations.items() if k in ANNOTATIONS}))
    return out


def block_inputs(children, where, depth=0):
    """Block specs from request `children`."""
    if not isinstance(children, list):
        raise validation(f"body failed validation: {where} should be an array, instead was `{shown(children)}`.")
    if len(children) > MAX_CHILDREN:
        raise validation(
            f"body failed validation: {where}.length should be ≤ `{MAX_CHILDREN}`, instead was `{len(children)}`.")
    specs = []
    for i, block in enumerate(children):
        at = f"{where}[{i}]"
        if not isinstance(block, dict):
            raise validation(f"body failed validation: {at} should be an object, instead was `{shown(block)}`.")
        kind = block.get("type")
        if kind is None:
            keys = [k for k in block if k in BLOCK_TYPES]
            kind = keys[0] if len(keys) == 1 else None
        if kind not in BLOCK_TYPES or not isinstance(block.get(kind), dict):
            raise validation(
                f"body failed validation. Fix one: {at}.type should be one of the block types, "
                f"instead was `{shown(kind)}`.")
        payload = copy.deepcopy(block[kind])
        nested = payload.pop("children", None)
        if kind in TEXT_BLOCKS:
            payload["rich_text"] = rich_text_input(payload.get("rich_text", []), f"{at}.{kind}.rich_text")
            payload.setdefault("color", "default")
            if kind == "to_do":
                payload["checked"] = bool(payload.get("checked", False))
            if kind == "code":
                payload.setdefault("language", "plain text")
                payload["caption"] = rich_text_input(payload.get("caption", []), f"{at}.code.caption")
        kids = []
        if nested is not None:
            if depth >= 2:
                raise validation(f"body failed validation: {at}.{kind}.children should be not present.")
            kids = block_inputs(nested, f"{at}.{kind}.children", depth + 1)
        specs.append(B(kind, payload, kids))
    return specs


def page_size(value, where):
    if value is None:
        return 100
    if not isinstance(value, int) or isinstance(value, bool):
        raise validation(f"{where} failed validation: {where}.page_size should be a number, instead was `{shown(value)}`.")
    if value > 100:
        raise validation(f"{where} failed validation: {where}.page_size should be ≤ `100`, instead was `{value}`.")
    if value < 1:
        raise validation(f"{where} failed validation: {where}.page_size should be ≥ `1`, instead was `{value}`.")
    return value


def paginate(items, size, cursor, where):
    """(page, next_cursor, has_more); cursors are item ids."""
    start = 0
    if cursor is not None:
        if not isinstance(cursor, str) or parse_uuid(cursor) is None:
            raise validation(
                f"{where} failed validation: {where}.start_cursor should be a valid uuid, instead was `{shown(cursor)}`.")
        cid = parse_uuid(cursor)
        ids = [i["id"] for i in items]
        if cid not in ids:
            raise validation(f"start_cursor provided is invalid: {cursor}")
        start = ids.index(cid)
    page = items[start:start + size]
    more = start + size < len(items)
    return page, (items[start + size]["id"] if more else None), more


def listing(results, next_cursor, has_more, kind):
    return {
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": has_more,
        "type": kind,
        kind: {},
        "request_id": str(uuid.uuid4()),
    }


# --------------------------------------------------------------------------
# Database queries
# --------------------------------------------------------------------------


def find_property(db, name):
    for pname, prop in db["properties"].items():
        if pname == name or prop["id"] == name:
            return pname, prop
    raise validation(f"Could not find property with name or id: {name}")


def comparable(page_prop):
    """A property value reduced for filtering and sorting (None if empty)."""
    kind = page_prop["type"]
    v = page_prop.get(kind)
    if kind in ("title", "rich_text"):
        s = plain(v)
        return s if s else None
    if kind in ("select", "status"):
        return v["name"] if v else None
    if kind == "multi_select":
        return [o["name"] for o in v] or None
    if kind == "date":
        return v["start"] if v else None
    if kind == "people":
        return [p["id"] for p in v] or None
    return v


FILTER_KINDS = {"title", "rich_text", "number", "select", "status", "multi_select", "date", "checkbox",
                "people", "url", "email", "phone_number"}


def check_filter(db, f, where="body.filter", depth=0):
    """Validate a filter once, before it is applied to rows."""
    if not isinstance(f, dict):
        raise validation(f"body failed validation: {where} should be an object, instead was `{shown(f)}`.")
    for combinator in ("and", "or"):
        if combinator in f:
            subs = f[combinator]
            if not isinstance(subs, list) or len(f) != 1:
                raise validation(f"body failed validation: {where}.{combinator} should be an array.")
            if depth >= 2:
                raise validation(f"body failed validation: {where} is nested too deeply (at most 2 levels).")
            for i, sub in enumerate(subs):
                check_filter(db, sub, f"{where}.{combinator}[{i}]", depth + 1)
            return
    if "property" not in f:
        if "timestamp" in f:
            raise validation("This test server does not support timestamp filters.")
        raise validation(f"body failed validation: {where}.property should be defined, instead was `undefined`.")
    _, prop = find_property(db, f["property"])
    kinds = [k for k in f if k in FILTER_KINDS]
    if len(kinds) != 1:
        raise validation(f"body failed validation: {where} should have exactly one property type condition.")
    kind = kinds[0]
    compatible = kind == prop["type"] or (kind == "rich_text" and prop["type"] == "title")
    if not compatible:
        raise validation(f"database property {prop['type']} does not match filter {kind}")
    cond = f[kind]
    if not isinstance(cond, dict) or len(cond) != 1:
        raise validation(f"body failed validation: {where}.{kind} should have exactly one condition.")
    op, operand = next(iter(cond.items()))
    allowed = OPERATORS.get(kind if kind != "rich_text" else "title", {})
    if op not in allowed:
        raise validation(f"body failed validation: {where}.{kind}.{op} is not a supported condition "
                         f"(this test server supports: {', '.join(sorted(allowed))}).")


def _text_ops():
    return {
        "equals": lambda v, x: v == x,
        "does_not_equal": lambda v, x: v != x,
        "contains": lambda v, x: v is not None and x.lower() in v.lower(),
        "does_not_contain": lambda v, x: v is None or x.lower() not in v.lower(),
        "starts_with": lambda v, x: v is not None and v.lower().startswith(x.lower()),
        "ends_with": lambda v, x: v is not None and v.lower().endswith(x.lower()),
        "is_empty": lambda v, x: v is None,
        "is_not_empty": lambda v, x: v is not None,
    }


def _num(f):
    return lambda v, x: v is not None and f(v, x)


OPERATORS = {
    "title": _text_ops(),
    "url": _text_ops(),
    "email": _text_ops(),
    "phone_number": _text_ops(),
    "number": {
        "equals": lambda v, x: v == x,
        "does_not_equal": lambda v, x: v != x,
        "greater_than": _num(lambda v, x: v > x),
        "less_than": _num(lambda v, x: v < x),
        "greater_than_or_equal_to": _num(lambda v, x: v >= x),
        "less_than_or_equal_to": _num(lambda v, x: v <= x),
        "is_empty": lambda v, x: v is None,
        "is_not_empty": lambda v, x: v is not None,
    },
    "select": {
        "equals": lambda v, x: v == x,
        "does_not_equal": lambda v, x: v != x,
        "is_empty": lambda v, x: v is None,
        "is_not_empty": lambda v, x: v is not None,
    },
    "multi_select": {
        "contains": lambda v, x: x in (v or []),
        "does_not_contain": lambda v, x: x not in (v or []),
        "is_empty": lambda v, x: not v,
        "is_not_empty": lambda v, x: bool(v),
    },
    "people": {
        "contains": lambda v, x: parse_uuid(x) in (v or []),
        "does_not_contain": lambda v, x: parse_uuid(x) not in (v or []),
        "is_empty": lambda v, x: not v,
        "is_not_empty": lambda v, x: bool(v),
    },
    "date": {
        "equals": lambda v, x: v is not None and v[:10] == x[:10],
        "before": lambda v, x: v is not None and v[:10] < x[:10],
        "after": lambda v, x: v is not None and v[:10] > x[:10],
        "on_or_before": lambda v, x: v is not None and v[:10] <= x[:10],
        "on_or_after": lambda v, x: v is not None and v[:10] >= x[:10],
        "is_empty": lambda v, x: v is None,
        "is_not_empty": lambda v, x: v is not None,
    },
    "checkbox": {
        "equals": lambda v, x: bool(v) == x,
        "does_not_equal": lambda v, x: bool(v) != x,
    },
}
OPERATORS["status"] = OPERATORS["select"]


def matches(db, row, f):
    if "and" in f:
        return all(matches(db, row, sub) for sub in f["and"])
    if "or" in f:
        return any(matches(db, row, sub) for sub in f["or"])
    name, prop = find_property(db, f["property"])
    kind = next(k for k in f if k in FILTER_KINDS)
    op, operand = next(iter(f[kind].items()))
    table = OPERATORS[kind if kind != "rich_text" else "title"]
    value = comparable(row["properties"][name])
    try:
        return table[op](value, operand)
    except (TypeError, AttributeError):
        raise validation(f"body failed validation: body.filter.{kind}.{op} has a value of the wrong type: "
                         f"`{shown(operand)}`.")


def sort_rows(db, rows, sorts):
    if not isinstance(sorts, list):
        raise validation(f"body failed validation: body.sorts should be an array, instead was `{shown(sorts)}`.")
    keys = []
    for i, s in enumerate(sorts):
        if not isinstance(s, dict):
            raise validation(f"body failed validation: body.sorts[{i}] should be an object.")
        direction = s.get("direction", "ascending")
        if direction not in ("ascending", "descending"):
            raise validation(
                f"body failed validation: body.sorts[{i}].direction should be `\"ascending\"` or "
                f"`\"descending\"`, instead was `{shown(direction)}`.")
        if "property" in s:
            name, _ = find_property(db, s["property"])
            keys.append((lambda r, n=name: comparable(r["properties"][n]), direction))
        elif s.get("timestamp") in ("created_time", "last_edited_time"):
            keys.append((lambda r, t=s["timestamp"]: r[t], direction))
        else:
            raise validation(f"body failed validation: body.sorts[{i}] should have property or timestamp.")

    def norm(v):
        if isinstance(v, list):
            return ",".join(str(x) for x in v).lower()
        if isinstance(v, str):
            return v.lower()
        return v

    def compare(a, b):
        for key, direction in keys:
            va, vb = norm(key(a)), norm(key(b))
            if va is None and vb is None:
                continue
            if va is None:
                return 1  # empty values last, whatever the direction
            if vb is None:
                return -1
            if va != vb:
                result = -1 if va < vb else 1
                return result if direction == "ascending" else -result
        return 0

    return sorted(rows, key=cmp_to_key(compare))


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


class Handler(serving.ApiHandler):
    log_name = "notion upstream"
    server_version = "notion-test-upstream"
    sys_version = ""
    workspaces = {}

    def send_json(self, status, body, headers=()):
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-notion-request-id", str(uuid.uuid4()))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def handle_api(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            result = self.route(method, raw)
            self.send_json(200, result)
        except ApiError as e:
            self.send_json(e.status, {
                "object": "error",
                "status": e.status,
                "code": e.code,
                "message": e.message,
                "request_id": str(uuid.uuid4()),
            })
        except Exception as e:  # a bug here should not look like a hang
            sys.stderr.write(f"notion upstream: internal error: {e!r}\n")
            self.send_json(500, {"object": "error", "status": 500, "code": "internal_server_error",
                                 "message": "Unexpected error occurred.", "request_id": str(uuid.uuid4())})

    def route(self, method, raw):
        url = urlsplit(self.path)
        self.query = dict(parse_qsl(url.query))
        parts = [p for p in url.path.split("/") if p]

        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        name = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if name is None:
            raise ApiError(401, "unauthorized", "API token is invalid.")
        version = self.headers.get("Notion-Version")
        if version is None:
            raise ApiError(400, "missing_version",
                           "Notion-Version header failed validation: Notion-Version header should be defined, "
                           "instead was `undefined`.")
        if version not in KNOWN_VERSIONS:
            raise ApiError(400, "invalid_request",
                           f"Notion-Version header failed validation: Notion-Version header should be one of "
                           f"{', '.join(sorted(KNOWN_VERSIONS))}, instead was `{version}`.")
        ws = self.workspaces[name]

        body = None
        if method in ("POST", "PATCH"):
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "invalid_json", "Error parsing JSON body.")
            else:
                body = {}
            if not isinstance(body, dict):
                raise validation(f"body failed validation: body should be an object, instead was `{shown(body)}`.")

        with ws.lock:
            if parts[:1] != ["v1"]:
                raise ApiError(400, "invalid_request_url", "Invalid request URL.")
            route = parts[1:]
            if route == ["search"] and method == "POST":
                return self.search(ws, body)
            if route == ["users", "me"] and method == "GET":
                return self.me(ws)
            if route == ["pages"] and method == "POST":
                return self.create_page(ws, body)
            if len(route) == 2 and route[0] == "pages" and method == "GET":
                return self.get_page(ws, self.path_id(route[1], "page_id"))
            if len(route) == 3 and route[0] == "blocks" and route[2] == "children":
                ident = self.path_id(route[1], "block_id")
                if method == "GET":
                    return self.children(ws, ident)
                if method == "PATCH":
                    return self.append(ws, ident, body)
            if len(route) == 2 and route[0] == "databases" and method == "GET":
                return self.get_database(ws, self.path_id(route[1], "database_id"))
            if len(route) == 3 and route[0] == "databases" and route[2] == "query" and method == "POST":
                return self.query_database(ws, self.path_id(route[1], "database_id"), body)
            raise ApiError(400, "invalid_request_url", "Invalid request URL.")

    @staticmethod
    def path_id(raw, name):
        ident = parse_uuid(raw)
        if ident is None:
            raise validation(f"path failed validation: path.{name} should be a valid uuid, instead was `{shown(raw)}`.")
        return ident

    # ---- routes

    def me(self, ws):
        return {
            "object": "user",
            "id": ws.bot_id,
            "name": f"mcpist ({ws.name})",
            "avatar_url": None,
            "type": "bot",
            "bot": {"owner": {"type": "workspace", "workspace": True}, "workspace_name": ws.name},
            "request_id": str(uuid.uuid4()),
        }

    def search(self, ws, body):
        query = body.get("query")
        if query is not None and not isinstance(query, str):
            raise validation(f"body failed validation: body.query should be a string, instead was `{shown(query)}`.")
        wanted = None
        f = body.get("filter")
        if f is not None:
            if not isinstance(f, dict) or f.get("property") != "object":
                raise validation(
                    f"body failed validation: body.filter.property should be `\"object\"`, instead was "
                    f"`{shown(f.get('property') if isinstance(f, dict) else f)}`.")
            wanted = f.get("value")
            if wanted not in ("page", "database"):
                raise validation(
                    f"body failed validation: body.filter.value should be `\"page\"` or `\"database\"`, "
                    f"instead was `{shown(wanted)}`.")
        direction = "descending"
        sort = body.get("sort")
        if sort is not None:
            if not isinstance(sort, dict) or sort.get("timestamp") != "last_edited_time" \
                    or sort.get("direction") not in ("ascending", "descending"):
                raise validation(
                    "body failed validation: body.sort should be an object with timestamp "
                    "`\"last_edited_time\"` and direction `\"ascending\"` or `\"descending\"`.")
            direction = sort["direction"]
        size = page_size(body.get("page_size"), "body")

        items = []
        if wanted in (None, "page"):
            items += [(r, ws.page_title(r), ws.page_json) for r in ws.pages.values()]
        if wanted in (None, "database"):
            items += [(r, plain(r["title"]), ws.database_json) for r in ws.databases.values()]
        needle = (query or "").strip().lower()
        hits = [(r, render) for r, title, render in items if needle in title.lower()]
        hits.sort(key=lambda h: h[0]["id"])
        hits.sort(key=lambda h: h[0]["last_edited_time"], reverse=(direction == "descending"))
        objects = [render(r) for r, render in hits]
        page, next_cursor, more = paginate(objects, size, body.get("start_cursor"), "body")
        return listing(page, next_cursor, more, "page_or_database")

    def get_page(self, ws, ident):
        if ident in ws.databases:
            raise validation(
                f"Provided ID {ident} is a database, not a page. Use the retrieve database API instead: "
                "https://developers.notion.com/reference/retrieve-a-database.")
        record = ws.pages.get(ident)
        if record is None:
            raise not_found("page", ident)
        return {**ws.page_json(record), "request_id": str(uuid.uuid4())}

    def get_database(self, ws, ident):
        if ident in ws.pages:
            raise validation(
                f"Provided ID {ident} is a page, not a database. Use the retrieve page API instead: "
                "https://developers.notion.com/reference/retrieve-a-page.")
        record = ws.databases.get(ident)
        if record is None:
            raise not_found("database", ident)
        return {**ws.database_json(record), "request_id": str(uuid.uuid4())}

    def children(self, ws, ident):
        owner = ws.pages.get(ident) or ws.blocks.get(ident)
        if owner is None:
            raise not_found("block", ident)
        if ident in ws.blocks and ws.blocks[ident]["type"] == "child_page":
            owner = ws.pages.get(ident, owner)
        raw = self.query.get("page_size")
        try:
            size = page_size(None if raw is None else int(raw), "query")
        except ValueError:
            raise validation(f"query failed validation: query.page_size should be a number, instead was `{shown(raw)}`.")
        blocks = [ws.block_json(ws.blocks[b]) for b in owner["children"]]
        page, next_cursor, more = paginate(blocks, size, self.query.get("start_cursor"), "query")
        return listing(page, next_cursor, more, "block")

    def append(self, ws, ident, body):
        owner = ws.pages.get(ident) or ws.blocks.get(ident)
        if owner is None:
            raise not_found("block", ident)
        if "children" not in body:
            raise validation("body failed validation: body.children should be defined, instead was `undefined`.")
        specs = block_inputs(body["children"], "body.children")
        parent_type = "page_id" if ident in ws.pages else "block_id"
        when = now()
        created = ws.add_blocks(ident, parent_type, specs, when)
        ws.touch(ident if ident in ws.pages else ws.page_of(ident))
        return listing([ws.block_json(ws.blocks[b]) for b in created], None, False, "block")

    def query_database(self, ws, ident, body):
        if ident in ws.pages:
            raise validation(
                f"Provided ID {ident} is a page, not a database. Use the retrieve page API instead: "
                "https://developers.notion.com/reference/retrieve-a-page.")
        db = ws.databases.get(ident)
        if db is None:
            raise not_found("database", ident)
        size = page_size(body.get("page_size"), "body")
        rows = [r for r in ws.pages.values() if r["parent"].get("database_id") == ident]
        f = body.get("filter")
        if f is not None:
            check_filter(db, f)
            rows = [r for r in rows if matches(db, r, f)]
        sorts = body.get("sorts")
        if sorts:
            rows = sort_rows(db, rows, sorts)
        objects = [ws.page_json(r) for r in rows]
        page, next_cursor, more = paginate(objects, size, body.get("start_cursor"), "body")
        return listing(page, next_cursor, more, "page_or_database")

    def create_page(self, ws, body):
        parent = body.get("parent")
        if not isinstance(parent, dict):
            raise validation(f"body failed validation: body.parent should be an object, instead was `{shown(parent)}`.")
        properties = body.get("properties", {})
        if not isinstance(properties, dict):
            raise validation(
                f"body failed validation: body.properties should be an object, instead was `{shown(properties)}`.")
        if "page_id" in parent:
            parent_id = parse_uuid(parent["page_id"])
            if parent_id is None:
                raise validation(f"body failed validation: body.parent.page_id should be a valid uuid, "
                                 f"instead was `{shown(parent['page_id'])}`.")
            if parent_id not in ws.pages:
                raise not_found("page", parent_id)
            values = self.page_properties(properties)
            new_parent = {"type": "page_id", "page_id": parent_id}
        elif "database_id" in parent:
            parent_id = parse_uuid(parent["database_id"])
            if parent_id is None:
                raise validation(f"body failed validation: body.parent.database_id should be a valid uuid, "
                                 f"instead was `{shown(parent['database_id'])}`.")
            db = ws.databases.get(parent_id)
            if db is None:
                raise not_found("database", parent_id)
            values = self.row_properties(ws, db, properties)
            new_parent = {"type": "database_id", "database_id": parent_id}
        elif parent.get("workspace") is True:
            raise validation("Can't create pages with a workspace parent with an internal integration.")
        else:
            raise validation("body failed validation. Fix one: body.parent.page_id should be defined, instead "
                             "was `undefined`. body.parent.database_id should be defined, instead was `undefined`.")
        specs = block_inputs(body.get("children", []), "body.children")
        ident = ws.new_id("page")
        when = now()
        record = {
            "id": ident,
            "parent": new_parent,
            "created_time": when,
            "last_edited_time": when,
            "created_by": ws.user(),
            "last_edited_by": ws.user(),
            "icon": body.get("icon") if isinstance(body.get("icon"), dict) else None,
            "properties": values,
            "children": [],
        }
        ws.pages[ident] = record
        ws.add_blocks(ident, "page_id", specs, when)
        if new_parent["type"] == "page_id":
            # The new page shows up as a child_page block of its parent.
            ws.add_blocks(parent_id, "page_id", [B("child_page", {"title": ""}) | {"id": ident}], when)
            ws.touch(parent_id)
        return {**ws.page_json(record), "request_id": str(uuid.uuid4())}

    @staticmethod
    def title_input(value, where):
        if isinstance(value, dict):
            if "title" not in value:
                raise validation(f"body failed validation: {where}.title should be defined, instead was `undefined`.")
            value = value["title"]
        return rich_text_input(value, f"{where}.title")

    def page_properties(self, properties):
        values = {"title": {"id": "title", "type": "title", "title": []}}
        for key, value in properties.items():
            if key != "title":
                raise validation(
                    f"Invalid property identifier for a page whose parent is a page: {key}. "
                    "Such a page has only a title property, named `title`.")
            values["title"]["title"] = self.title_input(value, "body.properties.title")
        return values

    def row_properties(self, ws, db, properties):
        values = {}
        for name, prop in db["properties"].items():
            values[name] = ws.property_value(prop, None)
        for key, value in properties.items():
            try:
                name, prop = find_property(db, key)
            except ApiError:
                raise validation(f"{key} is not a property that exists.")
            kind = prop["type"]
            where = f"body.properties.{key}"
            if not isinstance(value, dict) or kind not in value:
                if kind in ("title", "rich_text") and isinstance(value, list):
                    value = {kind: value}
                else:
                    raise validation(f"{key} is expected to be {kind}.")
            v = value[kind]
            out = {"id": prop["id"], "type": kind}
            if kind in ("title", "rich_text"):
                out[kind] = rich_text_input(v, f"{where}.{kind}")
            elif kind in ("select", "status"):
                if v is None:
                    out[kind] = None
                elif isinstance(v, dict) and isinstance(v.get("name"), str) and v["name"]:
                    if "," in v["name"]:
                        raise validation(f"Select option names cannot contain commas. ({key})")
                    out[kind] = ws.option(prop, v["name"])
                else:
                    raise validation(f"body failed validation: {where}.{kind}.name should be defined, "
                                     "instead was `undefined`.")
            elif kind == "multi_select":
                if not isinstance(v, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                      for o in v):
                    raise validation(f"body failed validation: {where}.multi_select should be an array of "
                                     "objects with a name.")
                out[kind] = [ws.option(prop, o["name"]) for o in v]
            elif kind == "date":
                if v is None:
                    out[kind] = None
                elif isinstance(v, dict) and isinstance(v.get("start"), str) and \
                        re.match(r"^\d{4}-\d{2}-\d{2}", v["start"]):
                    out[kind] = {"start": v["start"], "end": v.get("end"), "time_zone": v.get("time_zone")}
                else:
                    raise validation(f"body failed validation: {where}.date.start should be a valid ISO 8601 "
                                     f"date string, instead was `{shown(v.get('start') if isinstance(v, dict) else v)}`.")
            elif kind == "checkbox":
                if not isinstance(v, bool):
                    raise validation(f"body failed validation: {where}.checkbox should be a boolean, "
                                     f"instead was `{shown(v)}`.")
                out[kind] = v
            elif kind == "number":
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    raise validation(f"body failed validation: {where}.number should be a number or `null`, "
                                     f"instead was `{shown(v)}`.")
                out[kind] = v
            elif kind == "people":
                ids = [parse_uuid(p.get("id")) if isinstance(p, dict) else None for p in v or []]
                known = {pid: who for who, pid in ws.people.items()}
                if any(i not in known for i in ids):
                    raise validation(f"body failed validation: {where}.people should contain users of this workspace.")
                out[kind] = [ws.person(known[i]) for i in ids]
            else:
                out[kind] = v
            values[name] = out
        return values


def main():
    args = serving.parse_args(__doc__.splitlines()[0], 'JSON object mapping bearer tokens to workspace names, e.g. {"tok-1": "workspace-a"}', "workspace name")
    tokens = args.tokens
    Handler.tokens = tokens
    Handler.workspaces = {name: build_workspace(name) for name in sorted(set(tokens.values()))}
    Handler.verbose = args.verbose
    serving.serve(Handler, args.port, args.latency_ms)


if __name__ == "__main__":
    main()
