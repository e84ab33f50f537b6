#!/usr/bin/env python3
"""A local stand-in for api.github.com, for tests.

It speaks the real REST routes the `github` module uses, with GitHub's field
names, status codes, error bodies and `Link` pagination, over plain HTTP on
127.0.0.1. Each bearer token maps to a login, and every answer is computed for
that login (its own repositories, issues and files), so a test can tell which
account's token arrived.

    python3 tests/e2e/upstreams/github.py --port 0 \
        --tokens '{"tok-personal-1111": "alice", "tok-work-2222": "alice-work"}'

prints exactly one line, `listening on <port>`, once it accepts connections,
and serves until it is killed (SIGTERM and SIGINT exit cleanly).

Python standard library only.
"""

import base64
import copy
import hashlib
import json
import threading
from datetime import datetime, timezone
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import serving

API_VERSION = "2022-11-28"
DOCS = "https://docs.github.com/rest"
WEB = "https://github.com"
# Absolute API URLs inside bodies (`url`, `repository_url`, ...) point at the
# real API, as GitHub's do; only `Link` headers use the request's Host, so
# that a client can follow them to this server.
API = "https://api.github.com"

# An organisation repository every known login can see (as a member).
ORG = "acme"
ORG_REPO = "handbook"


# --------------------------------------------------------------------------
# Deterministic data
# --------------------------------------------------------------------------


def stable_id(*parts):
    """A positive integer id derived from `parts`, stable across runs."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return int(digest[:8], 16) % 900_000_000 + 100_000_000


def node_id(kind, ident):
    return base64.b64encode(f"{kind}:{ident}".encode()).decode().rstrip("=")


def stamp(day, hour=10, minute=0):
    """An ISO 8601 UTC timestamp in 2024, `day` counted from 1 January."""
    base = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
    t = datetime.fromtimestamp(base + (day - 1) * 86400 + hour * 3600 + minute * 60, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_object(login, kind="User"):
    uid = stable_id("user", login)
    return {
        "login": login,
        "id": uid,
        "node_id": node_id("U", uid),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "url": f"{API}/users/{login}",
        "html_url": f"{WEB}/{login}",
        "type": kind,
        "site_admin": False,
    }


LABELS = {
    "bug": ("d73a4a", "Something isn't working"),
    "enhancement": ("a2eeef", "New feature or request"),
    "documentation": ("0075ca", "Improvements or additions to documentation"),
    "good first issue": ("7057ff", "Good for newcomers"),
}


def label_object(full_name, name):
    color, description = LABELS.get(name, ("ededed", None))
    lid = stable_id("label", full_name, name)
    return {
        "id": lid,
        "node_id": node_id("LA", lid),
        "url": f"{API}/repos/{full_name}/labels/{name.replace(' ', '%20')}",
        "name": name,
        "color": color,
        "default": name in LABELS,
        "description": description,
    }


class Repo:
    def __init__(self, owner, name, *, private, description, language, stars, day, owner_kind="User"):
        self.owner = owner
        self.owner_kind = owner_kind
        self.name = name
        self.private = private
        self.description = description
        self.language = language
        self.stars = stars
        self.created_at = stamp(day)
        self.updated_at = stamp(day + 30, 12)
        self.pushed_at = stamp(day + 31, 9)
        self.issues = {}  # number -> issue dict
        self.comments = {}  # number -> [comment dict]
        self.files = {"main": {"README.md": f"# {name}\n\nA repository of {owner}.\n"}}

    @property
    def full_name(self):
        return f"{self.owner}/{self.name}"

    def to_json(self, viewer):
        rid = stable_id("repo", self.full_name)
        full = self.full_name
        open_issues = sum(1 for i in self.issues.values() if i["state"] == "open")
        admin = viewer == self.owner
        return {
            "id": rid,
            "node_id": node_id("R", rid),
            "name": self.name,
            "full_name": full,
            "private": self.private,
            "owner": user_object(self.owner, self.owner_kind),
            "html_url": f"{WEB}/{full}",
            "description": self.description,
            "fork": False,
            "url": f"{API}/repos/{full}",
            "issues_url": f"{API}/repos/{full}/issues{{/number}}",
            "contents_url": f"{API}/repos/{full}/contents/{{+path}}",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "pushed_at": self.pushed_at,
            "homepage": None,
            "size": 42,
            "stargazers_count": self.stars,
            "watchers_count": self.stars,
            "language": self.language,
            "has_issues": True,
            "forks_count": 0,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_issues,
            "license": None,
            "topics": [],
            "visibility": "private" if self.private else "public",
            "forks": 0,
            "open_issues": open_issues,
            "watchers": self.stars,
            "default_branch": "main",
            "permissions": {"admin": admin, "maintain": admin, "push": True, "triage": True, "pull": True},
        }


def make_issue(repo, number, title, body, *, author, state="open", labels=(), assignees=(),
               day=1, pull_request=False, closed_day=None):
    full = repo.full_name
    iid = stable_id("issue", full, number)
    kind = "pull" if pull_request else "issues"
    issue = {
        "url": f"{API}/repos/{full}/issues/{number}",
        "repository_url": f"{API}/repos/{full}",
        "labels_url": f"{API}/repos/{full}/issues/{number}/labels{{/name}}",
        "comments_url": f"{API}/repos/{full}/issues/{number}/comments",
        "events_url": f"{API}/repos/{full}/issues/{number}/events",
        "html_url": f"{WEB}/{full}/{kind}/{number}",
        "id": iid,
        "node_id": node_id("PR" if pull_request else "I", iid),
        "number": number,
        "title": title,
        "user": user_object(author),
        "labels": [label_object(full, name) for name in labels],
        "state": state,
        "locked": False,
        "assignee": user_object(assignees[0]) if assignees else None,
        "assignees": [user_object(a) for a in assignees],
        "milestone": None,
        "comments": 0,
        "created_at": stamp(day),
        "updated_at": stamp(day, 15),
        "closed_at": stamp(closed_day) if closed_day else None,
        "author_association": "OWNER" if author == repo.owner else "CONTRIBUTOR",
        "active_lock_reason": None,
        "body": body,
        "state_reason": "completed" if state == "closed" else None,
    }
    if pull_request:
        issue["draft"] = False
        issue["pull_request"] = {
            "url": f"{API}/repos/{full}/pulls/{number}",
            "html_url": f"{WEB}/{full}/pull/{number}",
            "diff_url": f"{WEB}/{full}/pull/{number}.diff",
            "patch_url": f"{WEB}/{full}/pull/{number}.patch",
            "merged_at": stamp(closed_day) if closed_day and state == "closed" else None,
        }
    repo.issues[number] = issue
    repo.comments[number] = []
    return issue


def make_comment(repo, number, author, body, created_at):
    issue = repo.issues[number]
    index = len(repo.comments[number]) + 1
    cid = stable_id("comment", repo.full_name, number, index, created_at)
    comment = {
        "url": f"{API}/repos/{repo.full_name}/issues/comments/{cid}",
        "html_url": f"{issue['html_url']}#issuecomment-{cid}",
        "issue_url": issue["url"],
        "id": cid,
        "node_id": node_id("IC", cid),
        "user": user_object(author),
        "created_at": created_at,
        "updated_at": created_at,
        "author_association": "OWNER" if author == repo.owner else "CONTRIBUTOR",
        "body": body,
    }
    repo.comments[number].append(comment)
    issue["comments"] = len(repo.comments[number])
    if created_at > issue["updated_at"]:
        issue["updated_at"] = created_at
    return comment


# A small binary file (a PNG signature and a few non-UTF-8 bytes).
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd" + bytes(range(128, 200))


def build_world(logins):
    """Repositories keyed by lowercase full name."""
    repos = {}

    def add(repo):
        repos[repo.full_name.lower()] = repo
        return repo

    languages = ["Rust", "Python", "Go", "TypeScript", None]
    for login in logins:
        for k in range(1, 6):
            repo = add(Repo(
                login, f"{login}-repo-{k}",
                private=(k == 2),
                description=f"Repository {k} of {login}" if k != 5 else None,
                language=languages[k - 1],
                stars=k * 3,
                day=k * 7,
            ))
            if k == 1:
                seed_issues(repo, login)
        notes = add(Repo(login, "notes", private=True, description=f"Notes of {login}",
                         language="Markdown", stars=0, day=40))
        notes.files = {
            "main": {
                "README.md": f"# Notes of {login}\n\nThese notes belong to {login}.\nSee docs/guide.md.\n",
                "docs/guide.md": f"# Guide\n\nHow {login} keeps notes: one file per topic.\n",
                "docs/images/logo.png": BINARY,
                "image.png": BINARY,
            },
            "dev": {
                "README.md": f"# Notes of {login} (dev branch)\n\nWork in progress.\n",
            },
        }
        make_issue(notes, 1, "Notes index", f"Keep an index of the notes of {login}.",
                   author=login, labels=["documentation"], day=41)
        make_comment(notes, 1, login, "Started the index in README.md.", stamp(42))

    org = add(Repo(ORG, ORG_REPO, private=False, description="The team handbook",
                   language=None, stars=12, day=3, owner_kind="Organization"))
    org.files["main"]["README.md"] = "# Handbook\n\nShared by every member of acme.\n"
    first = logins[0] if logins else "octocat"
    make_issue(org, 1, "Onboarding checklist", "What every newcomer reads first.",
               author=first, labels=["documentation", "good first issue"], day=5)
    return repos


def seed_issues(repo, login):
    """Issues of `<login>-repo-1`: open, closed, a pull request, comments, and
    enough plain items to need a second page at per_page=10."""
    make_issue(repo, 1, "Crash when the config file is missing",
               f"Reported by {login}: the program panics when ~/.config/app.toml does not exist.",
               author=login, labels=["bug"], assignees=[login], day=60)
    make_comment(repo, 1, login, "I can reproduce this on the latest release.", stamp(61))
    make_comment(repo, 1, "octocat", "A fix is in the pull request #3.", stamp(62))
    make_issue(repo, 2, "Add a dark mode", "The interface should follow the system theme.",
               author="octocat", state="closed", labels=["enhancement"], day=50, closed_day=55)
    make_comment(repo, 2, login, "Done in 1.4.", stamp(55))
    make_issue(repo, 3, "Fix crash on a missing config file",
               "Falls back to the defaults when the file does not exist. Fixes #1.",
               author="octocat", labels=["bug"], day=62, pull_request=True)
    make_issue(repo, 4, "Document the command line options", None,
               author=login, labels=["documentation", "good first issue"], day=63)
    make_issue(repo, 5, "Merged: speed up start-up", "Caches the parsed configuration.",
               author=login, state="closed", day=40, pull_request=True, closed_day=45)
    for n in range(6, 16):
        make_issue(repo, n, f"Tracking item {n - 5}", f"Routine task number {n - 5} for {login}.",
                   author=login, labels=["enhancement"] if n % 2 else [], day=64 + n)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status = status
        self.body = {"message": message, **extra, "documentation_url": DOCS, "status": str(status)}


def not_found():
    return ApiError(404, "Not Found")


def validation_failed(resource, field, code):
    return ApiError(422, "Validation Failed",
                    errors=[{"resource": resource, "code": code, "field": field}])


def int_param(query, name, default, lo, hi):
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"Invalid value for parameter '{name}': {raw!r} is not an integer")
    return max(lo, min(hi, value))


class Handler(serving.ApiHandler):
    log_name = "github.py"
    server_version = "GitHub.com"

    def version_string(self):
        return self.server_version

    # Set on the class by main().
    world = {}
    lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------

    def handle_api(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        extra_headers = {}
        try:
            login = self.check_headers()
            split = urlsplit(self.path)
            self.query = dict(parse_qsl(split.query, keep_blank_values=True))
            self.link = None
            with self.lock:
                status, body = self.route(method, split.path, login, raw_body)
            if self.link:
                extra_headers["Link"] = self.link
        except ApiError as e:
            status, body = e.status, e.body
        self.send_json(status, body, extra_headers)

    def check_headers(self):
        if not self.headers.get("User-Agent"):
            raise ApiError(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a "
                "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api"
                "#user-agent-required). Check https://developer.github.com for other possible causes.",
            )
        version = self.headers.get("X-GitHub-Api-Version")
        if version is not None and version != API_VERSION:
            raise ApiError(400, f"API version '{version}' is not supported. "
                                f"Supported versions: {API_VERSION}.")
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in ("bearer", "token") or token not in self.tokens:
            raise ApiError(401, "Bad credentials")
        return self.tokens[token]

    def send_json(self, status, body, extra_headers):
        data = b"" if body is None else (json.dumps(body, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Api-Version-Selected", API_VERSION)
        self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        self.send_header("X-RateLimit-Limit", "5000")
        self.send_header("X-RateLimit-Remaining", "4999")
        self.send_header("X-RateLimit-Used", "1")
        self.send_header("X-RateLimit-Resource", "search" if self.path.startswith("/search/") else "core")
        self.send_header("X-GitHub-Request-Id", hashlib.sha1(self.path.encode()).hexdigest()[:16].upper())
        for name, value in extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def json_body(self, raw):
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(400, "Problems parsing JSON")
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        return body

    def paginate(self, path, items, default_per_page=30):
        """One page of `items`, and the Link header for the others."""
        per_page = int_param(self.query, "per_page", default_per_page, 1, 100)
        page = int_param(self.query, "page", 1, 1, 1_000_000)
        last = max(1, -(-len(items) // per_page))
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        base = {k: v for k, v in self.query.items() if k not in ("page", "per_page")}

        def url(n):
            return f"<http://{host}{path}?{urlencode({**base, 'per_page': per_page, 'page': n})}>"

        links = []
        if page > 1:
            links.append(f'{url(min(page - 1, last))}; rel="prev"')
        if page < last:
            links.append(f'{url(page + 1)}; rel="next"')
            links.append(f'{url(last)}; rel="last"')
        if page > 1:
            links.append(f'{url(1)}; rel="first"')
        self.link = ", ".join(links) or None
        return items[(page - 1) * per_page: page * per_page]

    def visible(self, login, owner, name):
        repo = self.world.get(f"{owner}/{name}".lower())
        if repo is None or not (repo.owner == login or repo.owner == ORG):
            raise not_found()
        return repo

    # -- routes ------------------------------------------------------------

    def route(self, method, path, login, raw_body):
        parts = [unquote(p) for p in path.split("/")[1:]]
        if parts and parts[-1] == "" and len(parts) > 1 and parts[:1] != ["repos"]:
            parts = parts[:-1]
        if method == "GET" and parts == ["user"]:
            return 200, self.get_user(login)
        if method == "GET" and parts == ["user", "repos"]:
            return 200, self.list_user_repos(login, path)
        if method == "GET" and parts == ["search", "issues"]:
            return 200, self.search_issues(login, path)
        if len(parts) >= 3 and parts[0] == "repos":
            repo = self.visible(login, parts[1], parts[2])
            rest = parts[3:]
            if rest == [] and method == "GET":
                return 200, repo.to_json(login)
            if rest == ["issues"] and method == "GET":
                return 200, self.list_issues(repo, path)
            if rest == ["issues"] and method == "POST":
                return 201, self.create_issue(repo, login, self.json_body(raw_body))
            if len(rest) >= 2 and rest[0] == "issues" and rest[1].isdigit():
                number = int(rest[1])
                issue = repo.issues.get(number)
                if issue is None:
                    raise not_found()
                if rest[2:] == [] and method == "GET":
                    return 200, issue
                if rest[2:] == [] and method == "PATCH":
                    return 200, self.update_issue(repo, issue, self.json_body(raw_body))
                if rest[2:] == ["comments"] and method == "GET":
                    return 200, self.paginate(path, repo.comments[number])
                if rest[2:] == ["comments"] and method == "POST":
                    return 201, self.create_comment(repo, number, login, self.json_body(raw_body))
            if rest[:1] == ["contents"] and method == "GET":
                return 200, self.contents(repo, "/".join(rest[1:]).strip("/"))
        raise not_found()

    def get_user(self, login):
        owned = [r for r in self.world.values() if r.owner == login]
        return {
            **user_object(login),
            "name": login.replace("-", " ").title(),
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "bio": None,
            "public_repos": sum(1 for r in owned if not r.private),
            "total_private_repos": sum(1 for r in owned if r.private),
            "owned_private_repos": sum(1 for r in owned if r.private),
            "followers": 0,
            "following": 0,
            "created_at": stamp(1),
            "updated_at": stamp(90),
        }

    def list_user_repos(self, login, path):
        q = self.query
        visibility = q.get("visibility", "all")
        if visibility not in ("all", "public", "private"):
            raise validation_failed("Repository", "visibility", "invalid")
        affiliation = set((q.get("affiliation") or "owner,collaborator,organization_member").split(","))
        sort = q.get("sort", "full_name")
        if sort not in ("created", "updated", "pushed", "full_name"):
            raise validation_failed("Repository", "sort", "invalid")
        direction = q.get("direction") or ("asc" if sort == "full_name" else "desc")
        repos = []
        for repo in self.world.values():
            if repo.owner == login:
                kind = "owner"
            elif repo.owner == ORG:
                kind = "organization_member"
            else:
                continue
            if kind not in affiliation:
                continue
            if visibility != "all" and (visibility == "private") != repo.private:
                continue
            repos.append(repo)
        key = {
            "created": lambda r: r.created_at,
            "updated": lambda r: r.updated_at,
            "pushed": lambda r: r.pushed_at,
            "full_name": lambda r: r.full_name.lower(),
        }[sort]
        repos.sort(key=key, reverse=(direction == "desc"))
        return [r.to_json(login) for r in self.paginate(path, repos)]

    def list_issues(self, repo, path):
        q = self.query
        state = q.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise validation_failed("Issue", "state", "invalid")
        wanted = [l.strip() for l in (q.get("labels") or "").split(",") if l.strip()]
        assignee = q.get("assignee")
        since = q.get("since")
        sort = q.get("sort", "created")
        direction = q.get("direction", "desc")
        items = []
        for issue in repo.issues.values():
            if state != "all" and issue["state"] != state:
                continue
            names = {l["name"].lower() for l in issue["labels"]}
            if any(w.lower() not in names for w in wanted):
                continue
            logins = [a["login"] for a in issue["assignees"]]
            if assignee == "none" and logins:
                continue
            if assignee == "*" and not logins:
                continue
            if assignee not in (None, "", "none", "*") and assignee not in logins:
                continue
            if since and issue["updated_at"] < since:
                continue
            items.append(issue)
        key = {"created": "created_at", "updated": "updated_at", "comments": "comments"}.get(sort, "created_at")
        items.sort(key=lambda i: (i[key], i["number"]), reverse=(direction == "desc"))
        return self.paginate(path, items)

    def search_issues(self, login, path):
        q = self.query.get("q", "").strip()
        if not q:
            raise validation_failed("Search", "q", "missing")
        repos = [r for r in self.world.values() if r.owner in (login, ORG)]
        words, filters = [], []
        for token in q.split():
            key, sep, value = token.partition(":")
            key = key.lower()
            if not sep:
                words.append(token.lower())
            elif key == "repo":
                repo = self.world.get(value.lower())
                if repo is None or repo not in repos:
                    raise ApiError(
                        422, "Validation Failed",
                        errors=[{
                            "message": "The listed users and repositories cannot be searched either "
                                       "because the resources do not exist or you do not have "
                                       "permission to view them.",
                            "resource": "Search", "field": "q", "code": "invalid",
                        }])
                filters.append(lambda r, i, v=repo: r is v)
            elif key in ("user", "org", "owner"):
                filters.append(lambda r, i, v=value.lower(): r.owner.lower() == v)
            elif key in ("is", "state", "type"):
                v = value.lower()
                if v in ("open", "closed"):
                    filters.append(lambda r, i, v=v: i["state"] == v)
                elif v == "issue":
                    filters.append(lambda r, i: "pull_request" not in i)
                elif v in ("pr", "pull-request"):
                    filters.append(lambda r, i: "pull_request" in i)
            elif key == "label":
                filters.append(lambda r, i, v=value.strip('"').lower():
                               v in {l["name"].lower() for l in i["labels"]})
            elif key == "author":
                filters.append(lambda r, i, v=value.lower(): i["user"]["login"].lower() == v)
            elif key == "assignee":
                filters.append(lambda r, i, v=value.lower():
                               v in {a["login"].lower() for a in i["assignees"]})
            # Other qualifiers (in:, created:, ...) are accepted and ignored.
        hits = []
        for repo in repos:
            for issue in repo.issues.values():
                if not all(f(repo, issue) for f in filters):
                    continue
                text = f"{issue['title']}\n{issue['body'] or ''}".lower()
                if not all(w in text for w in words):
                    continue
                hits.append(issue)
        sort = self.query.get("sort")
        order = self.query.get("order", "desc")
        if sort in ("created", "updated", "comments"):
            key = {"created": "created_at", "updated": "updated_at", "comments": "comments"}[sort]
            hits.sort(key=lambda i: (i[key], i["id"]), reverse=(order == "desc"))
        else:
            hits.sort(key=lambda i: (i["updated_at"], i["id"]), reverse=True)
        page = self.paginate(path, hits)
        return {
            "total_count": len(hits),
            "incomplete_results": False,
            "items": [{**copy.deepcopy(i), "score": 1.0} for i in page],
        }

    def create_issue(self, repo, login, body):
        title = body.get("title")
        if isinstance(title, (int, float)) and not isinstance(title, bool):
            title = str(title)
        if not isinstance(title, str) or not title.strip():
            raise validation_failed("Issue", "title", "missing_field")
        text = body.get("body")
        if text is not None and not isinstance(text, str):
            raise validation_failed("Issue", "body", "invalid")
        labels = []
        for label in body.get("labels") or []:
            name = label.get("name") if isinstance(label, dict) else label
            if not isinstance(name, str) or not name:
                raise validation_failed("Issue", "labels", "invalid")
            labels.append(name)
        assignees = list(body.get("assignees") or [])
        if body.get("assignee"):
            assignees.insert(0, body["assignee"])
        known = set(self.tokens.values()) | {"octocat"}
        for a in assignees:
            if a not in known:
                raise validation_failed("Issue", "assignees", "invalid")
        number = max(repo.issues, default=0) + 1
        issue = make_issue(repo, number, title, text, author=login, labels=labels, assignees=assignees)
        issue["created_at"] = issue["updated_at"] = now()
        return issue

    def update_issue(self, repo, issue, body):
        """PATCH /repos/{owner}/{repo}/issues/{number}: what is given
        replaces what was there."""
        if "title" in body:
            if not isinstance(body["title"], str) or not body["title"].strip():
                raise validation_failed("Issue", "title", "invalid")
            issue["title"] = body["title"]
        if "body" in body:
            if body["body"] is not None and not isinstance(body["body"], str):
                raise validation_failed("Issue", "body", "invalid")
            issue["body"] = body["body"]
        if "labels" in body:
            names = body["labels"]
            if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                raise validation_failed("Issue", "labels", "invalid")
            issue["labels"] = [label_object(repo.full_name, n) for n in names]
        state, reason = body.get("state"), body.get("state_reason")
        if state not in (None, "open", "closed"):
            raise validation_failed("Issue", "state", "invalid")
        if reason not in (None, "completed", "not_planned", "reopened"):
            raise validation_failed("Issue", "state_reason", "invalid")
        if reason is not None and (state is None or (reason == "reopened") != (state == "open")):
            raise validation_failed("Issue", "state_reason", "invalid")
        if state == "closed":
            issue["state"], issue["state_reason"] = "closed", reason or "completed"
            issue["closed_at"] = now()
        elif state == "open" and issue["state"] == "closed":
            issue["state"], issue["state_reason"], issue["closed_at"] = "open", "reopened", None
        issue["updated_at"] = now()
        return issue

    def create_comment(self, repo, number, login, body):
        text = body.get("body")
        if not isinstance(text, str) or not text.strip():
            raise validation_failed("IssueComment", "body", "missing_field")
        return make_comment(repo, number, login, text, now())

    def contents(self, repo, path):
        ref = self.query.get("ref") or "main"
        files = repo.files.get(ref)
        if files is None:
            raise ApiError(404, f"No commit found for the ref {ref}")
        full = repo.full_name
        if path in files:
            data = files[path]
            if isinstance(data, str):
                data = data.encode()
            return self.file_entry(full, ref, path, data, with_content=True)
        prefix = f"{path}/" if path else ""
        children = {}
        for name, data in files.items():
            if not name.startswith(prefix):
                continue
            head, slash, _ = name[len(prefix):].partition("/")
            if slash:
                children.setdefault(head, ("dir", None))
            else:
                children[head] = ("file", data.encode() if isinstance(data, str) else data)
        if not children:
            raise not_found()
        entries = []
        for name in sorted(children):
            kind, data = children[name]
            child = f"{prefix}{name}"
            if kind == "file":
                entries.append(self.file_entry(full, ref, child, data, with_content=False))
            else:
                sha = hashlib.sha1(f"tree {full} {ref} {child}".encode()).hexdigest()
                entries.append(self.entry(full, ref, child, "dir", 0, sha))
        return entries

    def entry(self, full, ref, path, kind, size, sha):
        url = f"{API}/repos/{full}/contents/{path}?ref={ref}"
        html = f"{WEB}/{full}/{'blob' if kind == 'file' else 'tree'}/{ref}/{path}"
        git = f"{API}/repos/{full}/git/{'blobs' if kind == 'file' else 'trees'}/{sha}"
        return {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": size,
            "url": url,
            "html_url": html,
            "git_url": git,
            "download_url": f"https://raw.githubusercontent.com/{full}/{ref}/{path}" if kind == "file" else None,
            "type": kind,
            "_links": {"self": url, "git": git, "html": html},
        }

    def file_entry(self, full, ref, path, data, with_content):
        sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        entry = self.entry(full, ref, path, "file", len(data), sha)
        if with_content:
            encoded = base64.b64encode(data).decode()
            # GitHub wraps the base64 text with a newline every 60 characters.
            wrapped = "".join(encoded[i:i + 60] + "\n" for i in range(0, len(encoded), 60))
            entry = {"type": "file", "encoding": "base64", "size": len(data), "name": entry["name"],
                     "path": path, "content": wrapped, **{k: v for k, v in entry.items()
                                                         if k not in ("type", "size", "name", "path")}}
        return entry


def main():
    args = serving.parse_args(__doc__.splitlines()[0], 'JSON object mapping bearer tokens to logins, e.g. {"tok-1": "alice"}', "login")
    tokens = args.tokens
    Handler.tokens = tokens
    Handler.world = build_world(sorted(set(tokens.values())))
    Handler.verbose = args.verbose
    serving.serve(Handler, args.port, args.latency_ms)


if __name__ == "__main__":
    main()
