#!/usr/bin/env bash
# Re-create the ready workflow files from `motif-screen workflow create` (a test checks they match).
# Usage: workflows/regenerate.sh [OUTPUT_DIR]   (default: this folder)
set -euo pipefail
OUT="${1:-$(dirname "$0")}"
mkdir -p "$OUT"
cd "$OUT"
ms() { motif-screen workflow create --force "$@"; }
ms -o perovskites_formation_energy_chgnet.yaml --campaign perovskites-fe-chgnet --oracle chgnet \
   --target formation_energy_per_atom --goal minimize --hit-below -2.0 --budget 20 --rounds 2
ms -o perovskites_formation_energy_vasp.yaml --campaign perovskites-fe-vasp --oracle vasp \
   --target formation_energy_per_atom --goal minimize --hit-below -2.0 --budget 40 --rounds 2
ms -o ti_octahedra_formation_energy_vasp.yaml --campaign ti-octahedra-vasp --oracle vasp \
   --target formation_energy_per_atom --goal minimize --hit-below -2.0 --motif Ti:octahedral:O --budget 20 --rounds 2
ms -o perovskites_stability_vasp.yaml --campaign perovskites-hull-vasp --oracle vasp \
   --target energy_above_hull --goal minimize --hit-below 0.1 --budget 40 --rounds 2
