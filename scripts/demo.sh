#!/usr/bin/env bash
# The README's first command: create/reuse the environment, install, and run the demo campaign on the
# embedded store (no MongoDB server, no VASP, no GPU) in ./motif_screen_demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
DEMO_DIR="${DEMO_DIR:-$ROOT/motif_screen_demo}"
motif-screen init "$DEMO_DIR"
cd "$DEMO_DIR"
motif-screen run "$@"
motif-screen status
