"""Python SDK for MCPist modules, built into a component by componentize-py.

A module is a set of decorated functions::

    from mcpist_plugin import Plugin, READ_ONLY, IDEMPOTENT, UpstreamError, http

    plugin = Plugin(name="words", version="0.1.0",
                    description="Word statistics.", hosts=["https://example.com"])

    @plugin.tool(description="Count the words of a text.",
                 input={"type": "object", "properties": {"text": {"type": "string"}},
                        "required": ["text"]},
                 flags=READ_ONLY | IDEMPOTENT)
    def count(text):
        return {"words": len(text.split())}

    Module = plugin.module()   # the export componentize-py looks for

Each tool is one function called with the call's arguments as keyword
arguments (plus `context=` if it takes one). What it returns becomes the
result: a dict or list is a structured (JSON) result, a str is text. Raising
`InvalidArguments`, `UpstreamError` or `ToolFailed` returns that kind of tool
error; any other exception returns a `failed` tool error carrying the
exception's type and message (its traceback goes to the host's log), so a bug
in a module is reported, not a crash.

Build with `componentize-py -d wit/deps/mcpist-plugin-0.1.0 -w mcpist:plugin/plugin componentize -p
<sdk-dir> -p <module-dir> app -o module.wasm`; see docs/modules.md.
"""

import inspect
import json
import traceback

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import http as _http
from wit_world.imports import log as _log
from wit_world.imports.types import (
    CallOutput,
    Content_Json,
    Content_Text,
    CredentialBinding,
    HeaderInjection,
    Injection_Basic,
    Injection_Bearer,
    Injection_Header,
    Injection_Query,
    ModuleInfo,
    Tool,
    ToolError_Failed,
    ToolError_InvalidArguments,
    ToolError_UnknownTool,
    ToolError_Upstream,
    ToolFlags,
)

__all__ = [
    "Plugin", "InvalidArguments", "UpstreamError", "ToolFailed", "HttpError",
    "READ_ONLY", "DESTRUCTIVE", "IDEMPOTENT", "OPEN_WORLD", "CONCURRENCY_SAFE",
    "bearer", "header", "basic", "query", "http", "log",
]

READ_ONLY = ToolFlags.READ_ONLY
DESTRUCTIVE = ToolFlags.DESTRUCTIVE
IDEMPOTENT = ToolFlags.IDEMPOTENT
OPEN_WORLD = ToolFlags.OPEN_WORLD
CONCURRENCY_SAFE = ToolFlags.CONCURRENCY_SAFE


class ToolFailed(Exception):
    """The tool could not do what was asked (the `failed` tool error)."""

    def _tool_error(self):
        return ToolError_Failed(str(self))


class InvalidArguments(ToolFailed):
    """The arguments are well-formed but not acceptable."""

    def _tool_error(self):
        return ToolError_InvalidArguments(str(self))


class UpstreamError(ToolFailed):
    """The service the module called answered with an error."""

    def _tool_error(self):
        return ToolError_Upstream(str(self))


class HttpError(UpstreamError):
    """A request the host refused (`denied`: the message says what the owner
    could approve) or that failed on its way (`failed`)."""

    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


# Credential bindings: the host attaches the owner's secret to requests to
# `hosts`; the module never sees it.
def bearer(service, hosts):
    return CredentialBinding(service=service, inject=Injection_Bearer(), hosts=list(hosts))


def header(service, name, template, hosts):
    return CredentialBinding(service=service, hosts=list(hosts),
                             inject=Injection_Header(HeaderInjection(name=name, template=template)))


def basic(service, username, hosts):
    return CredentialBinding(service=service, inject=Injection_Basic(username), hosts=list(hosts))


def query(service, param, hosts):
    return CredentialBinding(service=service, inject=Injection_Query(param), hosts=list(hosts))


class _Tool:
    def __init__(self, function, name, description, input_schema, output_schema, flags):
        self.function = function
        self.name = name
        self.spec = Tool(
            name=name,
            description=description,
            input_schema=json.dumps(input_schema, sort_keys=True),
            output_schema=None if output_schema is None else json.dumps(output_schema, sort_keys=True),
            flags=flags,
        )
        self.signature = inspect.signature(function)
        self.takes_context = "context" in self.signature.parameters

    def bind(self, arguments, context):
        """The call's arguments bound to the function's parameters. Raises
        `InvalidArguments` when they do not fit: the host validated them
        against the schema, so the schema and the signature disagree."""
        if self.takes_context:
            arguments = dict(arguments, context=context)
        try:
            return self.signature.bind(**arguments)
        except TypeError as error:
            raise InvalidArguments(f"{self.name}: {error}") from None


class Plugin:
    """What a module declares: its name, version, description, hosts and
    credential bindings, and its tools (added with `Plugin.tool`)."""

    def __init__(self, name, version, description, hosts=(), credentials=()):
        self.info = dict(name=name, version=version, description=description,
                         hosts=list(hosts), credentials=list(credentials))
        self.tools = {}

    def tool(self, description, input, output=None, flags=READ_ONLY, name=None):
        """Register a function as a tool. `input` and `output` are JSON
        Schemas (dicts) of its arguments object and of its structured result;
        `name` defaults to the function's name."""

        def register(function):
            tool_name = name or function.__name__
            if tool_name in self.tools:
                raise ValueError(f"tool {tool_name!r} is declared twice")
            self.tools[tool_name] = _Tool(function, tool_name, description, input, output, flags)
            return function

        return register

    def module(self):
        """The class implementing the world's `module` export."""
        plugin = self

        class Module(exports.Module):
            def describe(self):
                return ModuleInfo(tools=[t.spec for t in plugin.tools.values()], **plugin.info)

            def call(self, tool, arguments, context):
                return plugin._call(tool, arguments, context)

        return Module

    def _call(self, tool, arguments, context):
        found = self.tools.get(tool)
        if found is None:
            raise Err(ToolError_UnknownTool(
                f"no tool {tool!r}; this module has: {', '.join(self.tools)}"))
        try:
            bound = found.bind(json.loads(arguments), context)
            result = found.function(*bound.args, **bound.kwargs)
        except ToolFailed as error:
            raise Err(error._tool_error())
        except Exception as error:
            _log_exception(tool)
            raise Err(ToolError_Failed(f"{type(error).__name__}: {error}"))
        return _output(result)


def _log_exception(tool):
    _log.log(_log.Level.ERROR, f"tool {tool} raised:\n{traceback.format_exc()}")


def _output(result):
    if isinstance(result, CallOutput):
        return result
    if isinstance(result, str):
        return CallOutput(content=[Content_Text(result)], structured=None)
    text = json.dumps(result)
    return CallOutput(content=[Content_Json(text)], structured=text)


def _at(level):
    return staticmethod(lambda message: _log.log(level, message))


class log:
    """The host's log, attributed to the module (redacted, bounded):
    `log.info("...")`, `log.warn`, `log.error`, `log.debug`."""

    debug = _at(_log.Level.DEBUG)
    info = _at(_log.Level.INFO)
    warn = _at(_log.Level.WARN)
    error = _at(_log.Level.ERROR)


class Response:
    """An answer from the host's HTTP import, after redirects, with the
    call's secrets redacted."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def raise_for_status(self):
        """Raise `UpstreamError` unless the status is 2xx."""
        if not 200 <= self.status < 300:
            raise UpstreamError(f"HTTP {self.status}: {self.text()[:500]}")
        return self


class http:
    """Requests through the host (`mcpist:plugin/http`): approved hosts only,
    credentials attached by the host."""

    @staticmethod
    def request(method, url, headers=(), body=None):
        if isinstance(body, str):
            body = body.encode()
        try:
            answer = _http.send(_http.Request(method=method, url=url,
                                              headers=list(headers), body=body))
        except Err as error:
            kind = "denied" if isinstance(error.value, _http.Error_Denied) else "failed"
            raise HttpError(kind, error.value.value) from None
        return Response(answer.status, answer.headers, answer.body)

    @staticmethod
    def get(url, headers=()):
        return http.request("GET", url, headers)

    @staticmethod
    def post_json(url, value, headers=()):
        return http.request("POST", url, [("content-type", "application/json"), *headers],
                            json.dumps(value))
