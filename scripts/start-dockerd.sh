#!/usr/bin/env bash
# Start a private Docker engine for the docker backend's tests.
#
# Idempotent: a second run finds the engine already answering and only prints
# the export line again; an engine of ours that is still starting is waited
# for, never started twice. After a crash it recovers: pid files naming a
# process that is gone or is not ours (pids are reused) and a socket nobody
# answers on are removed first, since dockerd refuses to start over a pid
# file whose pid is alive. Installs docker.io from Debian when dockerd is
# missing. Everything lives under $NOTEBOOK_FLEET_DOCKERD_DIR (default
# /tmp/notebook-fleet-dockerd): data root, exec root, pid file, socket, log.
#
# Usage:   eval "$(scripts/start-dockerd.sh)"
# Prints:  export NOTEBOOK_RUNTIME_DOCKER_URL=unix:///.../docker.sock
set -euo pipefail

DIR="${NOTEBOOK_FLEET_DOCKERD_DIR:-/tmp/notebook-fleet-dockerd}"
SOCK="$DIR/docker.sock"
URL="unix://$SOCK"
PIDFILE="$DIR/dockerd.pid"
CONTAINERD_PIDFILE="$DIR/exec/containerd/containerd.pid"

log() { echo "start-dockerd: $*" >&2; }

engine_answers() {
    curl --silent --fail --max-time 2 --unix-socket "$SOCK" http://docker/_ping \
        >/dev/null 2>&1
}

# Whether pid file $1 names a live process whose command line contains $2
# (our dockerd is started with --pidfile=$PIDFILE, its containerd with a
# state directory under $DIR/exec).
owner_alive() {
    local pid
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# The engine crashed (or was killed): drop what it left behind.
clear_stale() {
    if [ -e "$PIDFILE" ] && ! owner_alive "$PIDFILE" "--pidfile=$PIDFILE"; then
        log "removing stale pid file $PIDFILE (pid $(cat "$PIDFILE" 2>/dev/null))"
        rm -f "$PIDFILE"
    fi
    if [ -e "$CONTAINERD_PIDFILE" ] \
        && ! owner_alive "$CONTAINERD_PIDFILE" "$DIR/exec/containerd"; then
        log "removing stale pid file $CONTAINERD_PIDFILE"
        rm -f "$CONTAINERD_PIDFILE"
    fi
    if [ -S "$SOCK" ] && [ ! -e "$PIDFILE" ]; then
        rm -f "$SOCK"
    fi
}

wait_for_engine() {
    local pid="$1"
    for _ in $(seq 1 60); do
        engine_answers && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
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
        --pidfile="$PIDFILE" -H "$URL" \
        >"$DIR/dockerd.log" 2>&1 </dev/null &
    wait_for_engine $! && return
    log "dockerd did not answer on $SOCK (exited, or not within 30 s); last log lines:"
    tail -n 20 "$DIR/dockerd.log" >&2
    exit 1
}

command -v curl >/dev/null 2>&1 || apt-get install -y --no-install-recommends curl >&2
if ! engine_answers; then
    if owner_alive "$PIDFILE" "--pidfile=$PIDFILE"; then
        log "dockerd (pid $(cat "$PIDFILE")) is running but not answering yet; waiting"
        wait_for_engine "$(cat "$PIDFILE")" || {
            log "dockerd (pid $(cat "$PIDFILE")) does not answer on $SOCK; stop it or see $DIR/dockerd.log"
            exit 1
        }
    else
        clear_stale
        install_dockerd
        start_engine
    fi
fi
echo "export NOTEBOOK_RUNTIME_DOCKER_URL=$URL"
