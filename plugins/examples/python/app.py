"""The example module in Python: word statistics, and the title of a web page
fetched through the host."""

import html
import re

from mcpist_plugin import (
    CONCURRENCY_SAFE, IDEMPOTENT, OPEN_WORLD, READ_ONLY, InvalidArguments, Plugin, http,
)

plugin = Plugin(
    name="example-python",
    version="0.1.0",
    description="Example module in Python: word statistics and web page titles.",
    hosts=["https://example.com"],
)


@plugin.tool(
    description="Word statistics of a passage: how many words (runs of letters, digits and underscores), how many distinct ones ignoring case, and the longest.",
    input={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    output={
        "type": "object",
        "properties": {
            "words": {"type": "integer"},
            "unique_words": {"type": "integer"},
            "longest": {"type": "string"},
        },
        "required": ["words", "unique_words", "longest"],
    },
    flags=READ_ONLY | IDEMPOTENT | CONCURRENCY_SAFE,
)
def word_stats(text):
    words = re.findall(r"\w+", text)
    if text == "crash":
        # A bug, on purpose: shows how an uncaught exception is reported.
        raise RuntimeError("the example crashed on purpose")
    return {
        "words": len(words),
        "unique_words": len({w.lower() for w in words}),
        "longest": max(words, key=len, default=""),
    }


@plugin.tool(
    description="Fetch a page from https://example.com and return its HTTP status and <title>.",
    input={"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
    output={
        "type": "object",
        "properties": {"status": {"type": "integer"}, "title": {"type": "string"}},
        "required": ["status", "title"],
    },
    flags=READ_ONLY | OPEN_WORLD | CONCURRENCY_SAFE,
)
def page_title(url):
    if not url.startswith("https://"):
        raise InvalidArguments(f"url must start with https://, got {url!r}")
    page = http.get(url, headers=[("accept", "text/html")])
    found = re.search(r"<title[^>]*>(.*?)</title>", page.text(), re.I | re.S)
    return {"status": page.status, "title": html.unescape(found.group(1)).strip() if found else ""}


Module = plugin.module()
