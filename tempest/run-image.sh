#!/usr/bin/env bash
# Run Tempest's image API tests against a throwaway Stratus and compare with
# tempest/expected-pass-image.txt.
#
#   tempest/run-image.sh [REGEX]        default: '^tempest\.api\.image'
#
# Environment: STRATUS_SERVICES (services of the throwaway cloud, default all),
# CONCURRENCY (default 2). Uses the tempest venv and summarize.py of run.sh.
# Results: $TEMPEST_WS (default /tmp/stratus-tempest-image-ws)/{passed,failed,skipped}.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$ROOT/.venv-tempest
WS=${TEMPEST_WS:-/tmp/stratus-tempest-image-ws}
REGEX=${1:-'^tempest\.api\.image'}
EXPECTED=${EXPECTED:-$ROOT/tempest/expected-pass-image.txt}
CONCURRENCY=${CONCURRENCY:-2}

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

DATA=$(mktemp -d /tmp/stratus-tempest-image.XXXXXX)
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
export STRATUS_IDENTITY__ADMIN_PASSWORD=stratus-tempest-admin
export STRATUS_HYPERVISOR=${STRATUS_HYPERVISOR:-fake} STRATUS_DATAPLANE=${STRATUS_DATAPLANE:-noop}
"$ROOT/.venv/bin/python" -m stratus up >"$DATA/stratus.log" 2>&1 &
STRATUS_PID=$!
for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$STRATUS_PORTS__IMAGE/healthz" >/dev/null && break
    kill -0 "$STRATUS_PID" 2>/dev/null || { cat "$DATA/stratus.log"; exit 1; }
    sleep 0.2
done
echo "stratus up (pid $STRATUS_PID, data $DATA)" >&2

rm -rf "$WS"
"$VENV/bin/tempest" workspace remove --name workspace-image >/dev/null 2>&1 || true
"$VENV/bin/tempest" init "$WS" >"$DATA/tempest-init.log" 2>&1 || { cat "$DATA/tempest-init.log"; exit 1; }
cat >"$WS/etc/tempest.conf" <<CONF
[DEFAULT]
log_file = tempest.log

[auth]
admin_username = admin
admin_password = $STRATUS_IDENTITY__ADMIN_PASSWORD
admin_project_name = admin
admin_domain_name = Default
use_dynamic_credentials = true
create_isolated_networks = false

[identity]
uri_v3 = http://127.0.0.1:$STRATUS_PORTS__IDENTITY/v3
auth_version = v3
region = RegionOne
default_domain_id = default

[identity-feature-enabled]
api_v2 = false
api_v3 = true

[service_available]
glance = true
nova = false
neutron = false
cinder = false
swift = false

[image]
catalog_type = image
endpoint_type = publicURL
container_formats = bare,ovf,ami,ari,aki,ova
disk_formats = raw,qcow2,vmdk,vdi,iso,vhd,vhdx,ami,ari,aki
image_caching_enabled = false

[image-feature-enabled]
api_v2 = true
import_image = true
os_glance_reserved = true
manage_locations = false
image_conversion = false
image_format_enforcement = false

[enforce_scope]
glance = false

[validation]
run_validation = false
CONF

cd "$WS"
set +e
"$VENV/bin/tempest" run --regex "$REGEX" --concurrency "$CONCURRENCY" >"$WS/run.log" 2>&1
set -e
tail -n 12 "$WS/run.log" | sed -n '/Totals/,$p'
touch "$EXPECTED"
"$VENV/bin/python" "$ROOT/tempest/summarize.py" "$WS" "$EXPECTED"
