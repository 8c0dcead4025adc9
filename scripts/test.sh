#!/usr/bin/env bash
# Install test dependencies, make sure MariaDB, PostgreSQL and RabbitMQ run,
# and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/python -m tests.support.services
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
