#!/usr/bin/env python3
"""Container health: 0 when JupyterLab's ``<base>api`` (no token needed) or
code-server's ``/healthz`` answers 200 on the worker's port."""

import os
import sys
import urllib.request

port = os.environ.get("NOTEBOOK_FLEET_PORT", "8888")
base = os.environ.get("NOTEBOOK_FLEET_BASE_URL", "/")
for path in (f"{base}api", "/healthz"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        continue
sys.exit(1)
