#!/usr/bin/env bash
# `make demo-notebook-runtime-up` / `-down`: the product on the docker
# backend of a private Docker engine (scripts/start-dockerd.sh), with a
# worker image imported locally (no registry) and the demo data, so alice
# can start her "analysis" workspace as a real container.
#
# Everything lives in $DEMO_DIR (default var/demo-docker): its SQLite
# database, the server's pid file and log. `down` stops the server it
# started (by its pid file) and removes the workers' containers; the
# private engine keeps running (other work may use it; it is idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-.venv/bin}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
DEMO_DIR="${DEMO_DIR:-$PWD/var/demo-docker}"
PIDFILE="$DEMO_DIR/serve.pid"
log() { echo "demo-notebook-runtime: $*" >&2; }

serve_alive() {
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "serve --host $HOST --port"
}

demo_env() {
    export NOTEBOOK_FLEET_VAR_DIR="$DEMO_DIR" DEBUG="${DEBUG:-1}" REDIS_URL=""
    export NOTEBOOK_RUNTIME_DEFAULT_BACKEND=docker NOTEBOOK_RUNTIME_DOCKER_NETWORK=host
    export DATABASE_URL="sqlite:///$DEMO_DIR/db.sqlite3"
}

up() {
    mkdir -p "$DEMO_DIR"
    eval "$(scripts/start-dockerd.sh)"
    eval "$("$BIN/python" scripts/demo_image.py "$NOTEBOOK_RUNTIME_DOCKER_URL")"
    echo "$NOTEBOOK_RUNTIME_DOCKER_EXTRA_BINDS" >"$DEMO_DIR/extra-binds"
    demo_env
    "$BIN/python" manage.py migrate --noinput -v0
    "$BIN/python" manage.py seed_demo >&2
    if serve_alive; then
        log "already serving (pid $(cat "$PIDFILE"))"
    else
        setsid "$BIN/python" manage.py serve --host "$HOST" --port "$PORT" \
            >"$DEMO_DIR/serve.log" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
    fi
    for _ in $(seq 1 60); do
        if curl -sf "http://$HOST:$PORT/readyz" >/dev/null; then
            log "ready: http://$HOST:$PORT/ (log in as alice; passwords above," \
                "and in $DEMO_DIR/demo-credentials.json)"
            return 0
        fi
        serve_alive || break
        sleep 0.5
    done
    log "the server did not become ready; see $DEMO_DIR/serve.log"
    return 1
}

down() {
    if serve_alive; then
        local pid
        pid="$(cat "$PIDFILE")"
        kill "$pid"
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        log "server stopped"
    fi
    rm -f "$PIDFILE"
    [ -f "$DEMO_DIR/db.sqlite3" ] || return 0
    eval "$(scripts/start-dockerd.sh)"
    export NOTEBOOK_RUNTIME_DOCKER_EXTRA_BINDS="$(cat "$DEMO_DIR/extra-binds" 2>/dev/null)"
    # Only this demo's runtimes (its database names them): the engine may
    # run other containers (the test suite's) that are not ours to remove.
    demo_env
    "$BIN/python" manage.py shell -v0 -c '
from workers.backends.base import RuntimeRef
from workers.models import Worker
from workers.services.runtime import backend_for

for worker in Worker.objects.filter(backend="docker").exclude(runtime_ref={}):
    backend_for("docker").terminate(RuntimeRef.from_json(worker.runtime_ref))
    print("demo-notebook-runtime: removed", worker.runtime_ref.get("name"))
'
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
