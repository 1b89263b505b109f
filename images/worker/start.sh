#!/bin/sh
# Default command: JupyterLab on $NOTEBOOK_FLEET_PORT under $NOTEBOOK_FLEET_BASE_URL.
# The token comes from $JUPYTER_TOKEN (never on the command line).
# NOTEBOOK_FLEET_IDE=code-server starts code-server instead (password: $PASSWORD).
set -eu
port="${NOTEBOOK_FLEET_PORT:-8888}"
if [ "${NOTEBOOK_FLEET_IDE:-jupyterlab}" = "code-server" ]; then
    exec code-server --bind-addr "0.0.0.0:${port}" --auth password \
        --disable-telemetry "${HOME}"
fi
exec jupyter lab --no-browser --ServerApp.ip=0.0.0.0 \
    --ServerApp.port="${port}" --ServerApp.port_retries=0 \
    --ServerApp.base_url="${NOTEBOOK_FLEET_BASE_URL:-/}" \
    --ServerApp.root_dir="${HOME}" "$@"
