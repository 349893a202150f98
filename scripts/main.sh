#!/usr/bin/env bash
# Set up (idempotent) and run the main job: `qtctl demo`, the incident replayed in a sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/qtctl demo "$@"
