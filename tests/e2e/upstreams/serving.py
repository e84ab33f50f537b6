"""What the local upstream servers share: the command line (`--port`,
`--tokens`, `--verbose`) and serving until SIGTERM or SIGINT, after printing
exactly one line, `listening on <port>`. Python standard library only."""

import argparse
import json
import signal
from http.server import ThreadingHTTPServer


def parse_args(description, tokens_help, tokens_mean):
    """The arguments, with `tokens` parsed: a JSON object of token -> name."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--tokens", required=True, help=tokens_help)
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args()
    args.tokens = json.loads(args.tokens)
    if not isinstance(args.tokens, dict) or not all(isinstance(v, str) and v for v in args.tokens.values()):
        parser.error(f"--tokens must be a JSON object of token -> {tokens_mean}")
    return args


def serve(handler, port):
    """Serve `handler` on 127.0.0.1:`port` until terminated."""
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
