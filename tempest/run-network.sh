#!/usr/bin/env bash
# Run Tempest's network API tests against a throwaway Stratus and compare with
# tempest/expected-pass-network.txt.
#
#   tempest/run-network.sh [REGEX]      default: '^tempest\.api\.network'
#
# This is run.sh (same venv, cloud start-up, base tempest.conf and summary)
# with a TEMPEST_SETUP step, tempest/network_setup.py, that creates the
# external network `public` (172.24.4.0/24; database records only) and adds
# [service_available] neutron, [network] public_network_id and
# [network-feature-enabled] api_extensions as read from /v2.0/extensions.
# Environment as for run.sh; the workspace defaults to /tmp/stratus-tempest-network-ws.
# Compute-dependent tests skip (nova = false) until compute takes part.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TEMPEST_WS=${TEMPEST_WS:-/tmp/stratus-tempest-network-ws}
export TEMPEST_SETUP="'$ROOT/.venv/bin/python' '$ROOT/tempest/network_setup.py'"
exec "$ROOT/tempest/run.sh" "${1:-^tempest\.api\.network}"
