#!/usr/bin/env bash
# Install what Stratus needs on Debian 12: system packages (when root) and a
# virtualenv at .venv with Stratus in it. Idempotent; safe to run again.
#   scripts/install.sh          runtime dependencies
#   scripts/install.sh --test   runtime + test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

# qemu/dnsmasq/nftables/iproute2 are what real VMs and networks need.
SYSTEM_PACKAGES=(qemu-system-x86 qemu-utils dnsmasq-base nftables iproute2 python3-venv busybox-static syslinux syslinux-common mtools dosfstools cpio kmod)
# noVNC's pages, served by the console proxy (novncproxy) from /usr/share/novnc.
SYSTEM_PACKAGES+=(novnc)
missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "stratus: installing system packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "stratus: not root; skipping system packages ${missing[*]} (fake driver only)" >&2
    fi
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ((want_test)); then
    .venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
else
    .venv/bin/python -m pip install -q -e . 2>&1 | grep -v '^WARNING: Location' || true
fi
.venv/bin/python -c 'import stratus' || { echo "stratus: install failed" >&2; exit 1; }
