"""``python -m workers.backends.external --port N --token T``: serve the runtime
gateway protocol with the local backend. ``--token`` may also come from
``$NOTEBOOK_RUNTIME_GATEWAY_TOKEN`` (keeps it out of ``ps``)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from workers.backends.external.sealing import gateway_unsealer
from workers.backends.external.server import Gateway, make_server
from workers.backends.local import LocalBackend


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers.backends.external")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--token", default=os.environ.get("NOTEBOOK_RUNTIME_GATEWAY_TOKEN")
    )
    parser.add_argument("--workspaces-dir", default="var/gateway/workspaces")
    parser.add_argument("--state-dir", default="")
    parser.add_argument(
        "--public-host",
        default="",
        help="host name the control plane uses to reach runtimes",
    )
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token (or $NOTEBOOK_RUNTIME_GATEWAY_TOKEN) is required")
    backend = LocalBackend(
        args.workspaces_dir,
        state_dir=args.state_dir or None,
        public_host=args.public_host,
        # Setup credentials arrive sealed under a key from the shared token.
        unseal=gateway_unsealer(args.token),
    )
    server = make_server(Gateway(backend, args.token), args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"runtime gateway on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
