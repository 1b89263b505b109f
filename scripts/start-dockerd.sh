#!/usr/bin/env bash
# Start a private Docker engine for the docker backend's tests.
#
# Idempotent: a second run finds the engine already answering and only prints
# the export line again. Installs docker.io from Debian when dockerd is
# missing. Everything lives under $NOTEBOOK_FLEET_DOCKERD_DIR (default
# /tmp/notebook-fleet-dockerd): data root, exec root, pid file, socket, log.
#
# Usage:   eval "$(scripts/start-dockerd.sh)"
# Prints:  export NOTEBOOK_RUNTIME_DOCKER_URL=unix:///.../docker.sock
set -euo pipefail

DIR="${NOTEBOOK_FLEET_DOCKERD_DIR:-/tmp/notebook-fleet-dockerd}"
SOCK="$DIR/docker.sock"
URL="unix://$SOCK"

log() { echo "start-dockerd: $*" >&2; }

engine_answers() {
    curl --silent --fail --max-time 2 --unix-socket "$SOCK" http://docker/_ping \
        >/dev/null 2>&1
}

install_dockerd() {
    if command -v dockerd >/dev/null 2>&1; then
        return
    fi
    log "installing docker.io from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends docker.io >&2 \
        || { apt-get update >&2 && apt-get install -y --no-install-recommends docker.io >&2; }
}

start_engine() {
    mkdir -p "$DIR/data" "$DIR/exec"
    chmod 700 "$DIR"
    log "starting dockerd (log: $DIR/dockerd.log)"
    # setsid: the engine outlives this script and the shell that ran it.
    setsid dockerd \
        --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
        --data-root="$DIR/data" --exec-root="$DIR/exec" \
        --pidfile="$DIR/dockerd.pid" -H "$URL" \
        >"$DIR/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        engine_answers && return
        sleep 0.5
    done
    log "dockerd did not answer on $SOCK within 30 s; last log lines:"
    tail -n 20 "$DIR/dockerd.log" >&2
    exit 1
}

command -v curl >/dev/null 2>&1 || apt-get install -y --no-install-recommends curl >&2
if ! engine_answers; then
    install_dockerd
    start_engine
fi
echo "export NOTEBOOK_RUNTIME_DOCKER_URL=$URL"
