#!/usr/bin/env bash
# Install what is missing, then run the whole test suite (unit, integration as root,
# the example suite) and the linter. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
.venv/bin/ruff check netlab tests examples bench scripts
.venv/bin/python -m pytest -q -rs -p no:cacheprovider tests examples "$@"
