#!/usr/bin/env bash
# Tempest's compute API tests against a throwaway all-in-one (fake hypervisor).
#   tempest/run-compute.sh [REGEX]      default: '^tempest\.api\.compute'
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TEMPEST_SETUP="$ROOT/.venv/bin/python $ROOT/tempest/compute_setup.py"
export TEMPEST_WS=${TEMPEST_WS:-/tmp/stratus-tempest-compute-ws}
touch "$ROOT/tempest/expected-pass-compute.txt"
exec "$ROOT/tempest/run.sh" "${1:-^tempest\.api\.compute}"
