#!/usr/bin/env bash
# Run Tempest against Stratus and compare with the expected-pass list.
#
#   tempest/run.sh [REGEX]            default: '^tempest\.api\.identity'
#
# Environment:
#   STRATUS_AUTH_URL, STRATUS_ADMIN_PASSWORD  use a running Stratus (identity URL ending in /v3)
#                                             instead of starting a throwaway all-in-one
#   STRATUS_SERVICES                          services of the throwaway cloud (default: all)
#   EXPECTED                                  expected-pass list (default: per REGEX, see below)
#   CONCURRENCY                               tempest workers (default 2)
#   TEMPEST_WS                                workspace (default tempest/workspace)
#   SECURITY_COMPLIANCE                       true/false: run Tempest's security-compliance
#                                             tests (default: true for identity runs on the
#                                             throwaway cloud, which is then started with
#                                             lockout after 2 failures for 5 s and a password
#                                             history of 2, matching tempest.conf)
#   TEMPEST_SETUP                             a command run once the cloud answers (with
#                                             STRATUS_AUTH_URL and STRATUS_ADMIN_PASSWORD
#                                             exported) that creates what a service's tests
#                                             need and prints extra tempest.conf sections;
#                                             they are appended, so their keys win
#                                             (see tempest/run-network.sh)
#
# The tempest venv (.venv-tempest) is created on first use with `pip install tempest`.
# Results: tempest/workspace/{passed,failed,skipped}.txt and a comparison with EXPECTED.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$ROOT/.venv-tempest
WS=${TEMPEST_WS:-$ROOT/tempest/workspace}
REGEX=${1:-'^tempest\.api\.identity'}
SERVICE=$(echo "$REGEX" | sed -n 's/.*api\\\.\([a-z]*\).*/\1/p')
EXPECTED=${EXPECTED:-$ROOT/tempest/expected-pass-${SERVICE:-identity}.txt}
CONCURRENCY=${CONCURRENCY:-2}
if [ -z "${STRATUS_AUTH_URL:-}" ] && [ "${SERVICE:-identity}" = identity ]; then
    SECURITY_COMPLIANCE=${SECURITY_COMPLIANCE:-true}
fi
SECURITY_COMPLIANCE=${SECURITY_COMPLIANCE:-false}
LOCKOUT_ATTEMPTS=2 LOCKOUT_DURATION=5 UNIQUE_PASSWORDS=2

if [ ! -x "$VENV/bin/tempest" ]; then
    echo "creating $VENV with tempest" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q tempest
fi

STRATUS_PID=""
cleanup() {
    if [ -n "$STRATUS_PID" ]; then
        kill "$STRATUS_PID" 2>/dev/null || true
        wait "$STRATUS_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

if [ -z "${STRATUS_AUTH_URL:-}" ]; then
    DATA=$(mktemp -d /tmp/stratus-tempest.XXXXXX)
    eval "$("$ROOT/.venv/bin/python" - <<'PY'
import socket
names = ["identity", "compute", "image", "network", "volume", "dashboard"]
socks = []
for n in names:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
    print(f"export STRATUS_PORTS__{n.upper()}={s.getsockname()[1]}")
PY
)"
    export STRATUS_DATA_DIR=$DATA
    export STRATUS_IDENTITY__ADMIN_PASSWORD=${STRATUS_ADMIN_PASSWORD:-stratus-tempest-admin}
    export STRATUS_HYPERVISOR=${STRATUS_HYPERVISOR:-fake} STRATUS_DATAPLANE=${STRATUS_DATAPLANE:-noop}
    if [ "$SECURITY_COMPLIANCE" = true ]; then
        export STRATUS_IDENTITY__LOCKOUT_FAILURE_ATTEMPTS=$LOCKOUT_ATTEMPTS
        export STRATUS_IDENTITY__LOCKOUT_DURATION=$LOCKOUT_DURATION
        export STRATUS_IDENTITY__UNIQUE_LAST_PASSWORD_COUNT=$UNIQUE_PASSWORDS
    fi
    "$ROOT/.venv/bin/python" -m stratus up >"$DATA/stratus.log" 2>&1 &
    STRATUS_PID=$!
    STRATUS_AUTH_URL=http://127.0.0.1:$STRATUS_PORTS__IDENTITY/v3
    STRATUS_ADMIN_PASSWORD=$STRATUS_IDENTITY__ADMIN_PASSWORD
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$STRATUS_PORTS__IDENTITY/healthz" >/dev/null && break
        kill -0 "$STRATUS_PID" 2>/dev/null || { cat "$DATA/stratus.log"; exit 1; }
        sleep 0.2
    done
    echo "stratus up (pid $STRATUS_PID, data $DATA, identity $STRATUS_AUTH_URL)" >&2
fi

EXTRA_CONF=""
if [ -n "${TEMPEST_SETUP:-}" ]; then
    export STRATUS_AUTH_URL STRATUS_ADMIN_PASSWORD
    EXTRA_CONF=$(eval "$TEMPEST_SETUP")
fi

NAME=stratus-${SERVICE:-identity}
rm -rf "$WS"
"$VENV/bin/tempest" workspace remove --name "$NAME" >/dev/null 2>&1 || true
"$VENV/bin/tempest" init --name "$NAME" "$WS" >/dev/null 2>&1
cat >"$WS/etc/tempest.conf" <<CONF
[DEFAULT]
log_file = tempest.log

[auth]
admin_username = admin
admin_password = $STRATUS_ADMIN_PASSWORD
admin_project_name = admin
admin_domain_name = Default
use_dynamic_credentials = true
create_isolated_networks = false

[identity]
uri_v3 = $STRATUS_AUTH_URL
auth_version = v3
region = RegionOne
v3_endpoint_type = public
default_domain_id = default
user_lockout_failure_attempts = $LOCKOUT_ATTEMPTS
user_lockout_duration = $LOCKOUT_DURATION
user_unique_last_password_count = $UNIQUE_PASSWORDS
user_minimum_password_age = 0

[identity-feature-enabled]
api_v2 = false
api_v3 = true
trust = true
access_rules = true
security_compliance = $SECURITY_COMPLIANCE
api_extensions = OS-INHERIT,OS-EC2,OS-REVOKE,OS-TRUST

[service_available]
nova = false
glance = false
neutron = false
cinder = false
swift = false

[validation]
run_validation = false
CONF
printf '\n%s\n' "$EXTRA_CONF" >>"$WS/etc/tempest.conf"

cd "$WS"
set +e
"$VENV/bin/tempest" run --regex "$REGEX" --concurrency "$CONCURRENCY" >"$WS/run.log" 2>&1
set -e
tail -n 12 "$WS/run.log" | sed -n '/Totals/,$p'
"$VENV/bin/python" "$ROOT/tempest/summarize.py" "$WS" "$EXPECTED"
