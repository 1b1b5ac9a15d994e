#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run all of it:
# Python packages (the library, test tools, Phoenix as the OTLP receiver), the Prometheus
# server and docker-compose (to parse the compose file), then lint, types and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# The Debian package starts a system Prometheus on :9090; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi

"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test,integration,ray]'

echo "== ruff"
"$PYTHON" -m ruff check src tests benchmarks examples grafana docs/plugins
"$PYTHON" -m ruff format --check src tests benchmarks examples grafana docs/plugins
echo "== mypy --strict"
"$PYTHON" -m mypy
echo "== pytest"
exec "$PYTHON" -m pytest -W error "$@"
