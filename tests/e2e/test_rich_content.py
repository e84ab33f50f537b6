"""Rich content: a module built for mcpist:plugin@0.2.0 returns an image,
which reaches the official Python SDK as MCP image content whose bytes are
the PNG the module made: every chunk's CRC holds, and the decoded pixels are
a QR code (light quiet zone, the three finder patterns where the QR
specification puts them). At 2025-11-25 and 2026-07-28 over stdio, and over
Streamable HTTP; in flat mode too.
"""

import base64
import struct
import zlib

import pytest
from mcp import Client
from mcp.types import ImageContent, TextContent

from support import add_client, connect, http_server, serve

SCALE = 4
QUIET_ZONE = 4


def chunks(png):
    """The PNG's chunks as (type, data), each CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    at, found = 8, []
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + data) == crc, f"chunk {kind!r} is damaged"
        found.append((kind, data))
        at += 12 + length
    assert found[-1][0] == b"IEND"
    return found


def pixels(png):
    """Rows of booleans (True = dark) of a 1-bit greyscale PNG, unfiltered."""
    found = chunks(png)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", found[0][1])
    assert (depth, colour, interlace) == (1, 0, 0), "expected 1-bit greyscale, not interlaced"
    raw = zlib.decompress(b"".join(data for kind, data in found if kind == b"IDAT"))
    stride = (width + 7) // 8
    assert len(raw) == height * (stride + 1)
    rows, previous = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - 1] if i else 0
            up = previous[i]
            upleft = previous[i - 1] if i else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - upleft
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else upleft)) & 0xFF
        previous = bytes(line)
        rows.append([not (line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
    return rows


def assert_is_a_qr_code(png):
    rows = pixels(png)
    side = len(rows)
    assert all(len(row) == side for row in rows), "a QR code image is square"
    assert side % SCALE == 0
    modules = side // SCALE - 2 * QUIET_ZONE
    assert (modules - 17) % 4 == 0 and 21 <= modules <= 177, f"{modules} is not a QR code size"

    def dark(mx, my):
        return rows[(my + QUIET_ZONE) * SCALE][(mx + QUIET_ZONE) * SCALE]

    quiet = [rows[y][x] for y in range(side) for x in range(side) if min(x, y, side - 1 - x, side - 1 - y) < QUIET_ZONE * SCALE]
    assert not any(quiet), "the quiet zone must be light"
    # A finder pattern: a dark 7×7 ring, a light ring, a dark 3×3 centre.
    for ox, oy in [(0, 0), (modules - 7, 0), (0, modules - 7)]:
        for y in range(7):
            for x in range(7):
                ring = max(abs(x - 3), abs(y - 3))
                assert dark(ox + x, oy + y) == (ring != 2), f"finder pattern at {ox},{oy} is wrong at {x},{y}"


def the_image(result):
    assert not result.is_error, result.content
    images = [c for c in result.content if isinstance(c, ImageContent)]
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    assert len(images) == 1 and images[0].mime_type == "image/png", result.content
    assert texts and "PNG" in texts[0], texts
    return base64.b64decode(images[0].data, validate=True)


ARGUMENTS = {"text": "https://example.com/mcpist?from=qr", "scale": SCALE}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_an_image_arrives_intact_over_stdio(home, mode):
    async with Client(serve(home), mode=mode) as client:
        result = await client.call_tool(
            "call_module_tool", {"module": "text", "tool": "qr_code", "arguments": ARGUMENTS}
        )
    assert_is_a_qr_code(the_image(result))


@pytest.mark.anyio
async def test_over_http_and_in_flat_mode(home):
    (home / "mcpist.toml").write_text('[serve]\ntools = "flat"\n')
    key = add_client(home, "desk")
    with http_server(home) as base:
        async with connect(base, key) as client:
            result = await client.call_tool("text.qr_code", ARGUMENTS)
    assert_is_a_qr_code(the_image(result))


@pytest.mark.anyio
async def test_text_too_long_for_a_qr_code_says_what_to_do(home):
    async with Client(serve(home)) as client:
        result = await client.call_tool(
            "call_module_tool",
            {"module": "text", "tool": "qr_code", "arguments": {"text": "é" * 1024, "error_correction": "high"}},
        )
    assert result.is_error
    assert "choose a lower level" in result.content[0].text
