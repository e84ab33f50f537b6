"""What the local upstream servers share: the command line (`--port`,
`--tokens`, `--verbose`, `--latency-ms`) and serving until SIGTERM or SIGINT, after printing
exactly one line, `listening on <port>`. Python standard library only."""

import argparse
import json
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ApiHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; every method goes to `handle_api(method)`;
    request logging on stderr only with --verbose."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle's algorithm the
    # body waits for the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True
    # Prefix of the log lines.
    log_name = "upstream"
    # Set on the class by main().
    tokens = {}
    verbose = False
    # Seconds every answer waits before it is computed: the network and the
    # service's own time, for benchmarks that need a realistic upstream.
    latency = 0.0

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write(f"{self.log_name}: " + (fmt % args) + "\n")

    def do_GET(self):
        self.answer("GET")

    def do_POST(self):
        self.answer("POST")

    def do_PATCH(self):
        self.answer("PATCH")

    def do_PUT(self):
        self.answer("PUT")

    def do_DELETE(self):
        self.answer("DELETE")

    def answer(self, method):
        if self.latency:
            time.sleep(self.latency)
        self.handle_api(method)

    def handle_api(self, method):
        raise NotImplementedError


def parse_args(description, tokens_help, tokens_mean):
    """The arguments, with `tokens` parsed: a JSON object of token -> name."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--tokens", required=True, help=tokens_help)
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    parser.add_argument("--latency-ms", type=float, default=0, help="wait this long before every answer")
    args = parser.parse_args()
    args.tokens = json.loads(args.tokens)
    if not isinstance(args.tokens, dict) or not all(isinstance(v, str) and v for v in args.tokens.values()):
        parser.error(f"--tokens must be a JSON object of token -> {tokens_mean}")
    return args


def serve(handler, port, latency_ms=0):
    """Serve `handler` on 127.0.0.1:`port` until terminated, each answer
    `latency_ms` late."""
    handler.latency = latency_ms / 1000
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
