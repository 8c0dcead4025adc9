#!/usr/bin/env bash
# Tempest's compute API tests with networking on: run.sh with both setup steps
# (tempest/compute_setup.py, then tempest/network_setup.py), plus
# [auth] create_isolated_networks = true (each test project gets its own
# network/subnet/router) and [compute-feature-enabled] interface_attach = true.
#
#   tempest/run-compute-neutron.sh [REGEX]      default: '^tempest\.api\.compute' (~9 min)
# Compared with tempest/expected-pass-compute-neutron.txt (the full run's passes; a
# narrower REGEX reports the rest as not passed). The tests that skip without neutron:
#   '^tempest\.api\.compute\.(servers\.test_attach_interfaces|servers\.test_create_server|security_groups|floating_ips|servers\.test_server_actions)'
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="'$ROOT/.venv/bin/python'"
export TEMPEST_SETUP="$PY '$ROOT/tempest/compute_setup.py' && $PY '$ROOT/tempest/network_setup.py' && printf '\n[auth]\ncreate_isolated_networks = true\n\n[compute-feature-enabled]\ninterface_attach = true\n'"
export TEMPEST_WS=${TEMPEST_WS:-/tmp/stratus-tempest-compute-neutron-ws}
export STRATUS_COMPUTE__FAKE_HOSTS=${STRATUS_COMPUTE__FAKE_HOSTS:-2}
export EXPECTED=${EXPECTED:-$ROOT/tempest/expected-pass-compute-neutron.txt}
touch "$EXPECTED"
exec "$ROOT/tempest/run.sh" "${1:-^tempest\.api\.compute}"
