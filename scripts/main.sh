#!/usr/bin/env bash
# Set up (idempotent) and run the main job: diagnose this machine with `qtctl doctor`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/qtctl doctor "$@"
