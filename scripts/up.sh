#!/usr/bin/env bash
# Install everything and start the all-in-one cloud in the foreground.
# Extra arguments go to `stratus up` (e.g. -v).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/stratus up "$@"
