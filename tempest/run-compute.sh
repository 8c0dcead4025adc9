#!/usr/bin/env bash
# Tempest's compute API tests against a throwaway all-in-one (fake hypervisor).
#   tempest/run-compute.sh [REGEX]      default: '^tempest\.api\.compute'
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TEMPEST_SETUP="$ROOT/.venv/bin/python $ROOT/tempest/compute_setup.py"
export TEMPEST_WS=${TEMPEST_WS:-/tmp/stratus-tempest-compute-ws}
# Two fake compute hosts, so Tempest's migration tests run too.
export STRATUS_COMPUTE__FAKE_HOSTS=${STRATUS_COMPUTE__FAKE_HOSTS:-2}
touch "$ROOT/tempest/expected-pass-compute.txt"
exec "$ROOT/tempest/run.sh" "${1:-^tempest\.api\.compute}"
