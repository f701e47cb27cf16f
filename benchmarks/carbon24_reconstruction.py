"""carbon-24 reconstruction: a second crystal family (one element, 6–24 atoms per cell), CDVAE's protocol.

    python benchmarks/carbon24_reconstruction.py [--data ../shared/data/carbon_24] [--checkpoint CKPT]

Only carbon-24's validation split is at hand (2,032 cells). The recipe
motif_screen/pretrained/carbon24_autoencoder.yaml trains on 90% of it and holds 10% (seeded) out:
this benchmark reports on that **development split**, never seen in training, and chooses nothing
on it (flow steps: the model's default). CDVAE trains on 6,091 cells and reports on its test split,
so the two figures differ in protocol by the split and the training-set size; they stand side by side.

Headline: one decode per cell (size, composition, lattice and geometry all predicted from the latent
mean), only valid predictions count, match = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3),
RMSE = mean normalised RMS over matches. Beside it, labelled: best of 16 decodes picked by the
encoder (K as chosen on perov-5's development split, not on carbon).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reconstruction import reconstruct
from results_io import ROOT, checkpoint_provenance, load_model, write_result

NAME = "carbon24_reconstruction"
CHECKPOINT = ROOT / "motif_screen" / "pretrained" / "carbon24_autoencoder.pt"
RECIPE = ROOT / "motif_screen" / "pretrained" / "carbon24_autoencoder.yaml"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "carbon_24")
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="the recipe that trained --checkpoint")
    parser.add_argument("--candidates", type=int, default=16, help="K of the labelled best-of-K row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"{NAME}.json")
    args = parser.parse_args(argv)

    import numpy as np
    import yaml

    from motif_screen.training.autoencoder import development_split

    model = load_model(args)
    recipe = {**yaml.safe_load(args.recipe.read_text()), "data": str(args.data / "val.csv")}
    dev, _, n_train = development_split(recipe, model)
    steps = model.decoder.config.flow_steps
    single, decoded, seconds = reconstruct(model, dev, steps, 1, args.seed)
    several, _, seconds_k = reconstruct(model, dev, steps, args.candidates, args.seed)
    same_size = [p is not None and len(p) == len(t) for p, t in zip(decoded, dev)]
    info = getattr(model, "checkpoint_info", {}) or {}
    recorded = info.get("metrics") or {}
    # a heads recipe run on the checkpoint keeps the autoencoder's own training record as base_*
    train_metrics = {k[5:]: v for k, v in recorded.items() if k.startswith("base_")} or recorded
    metrics = {
        "match_rate": single["match_rate"],
        "rmse": single["rmse"],
        "match_rate_rms_below_0_05": single["precise_0_05"],
        "valid_rate": single["valid_rate"],
        "size_accuracy": float(np.mean(same_size)),
        "decode_s_per_structure": seconds / len(dev),
        "match_rate_best_of_k": several["match_rate"],
        "rmse_best_of_k": several["rmse"],
        "candidates_best_of_k": args.candidates,
        "decode_s_per_structure_best_of_k": seconds_k / len(dev),
        "n_dev": len(dev),
        "n_train": n_train,
        "dev_mean_atoms": float(np.mean([len(s) for s in dev])),
        "flow_steps": steps,
        "train_minutes": float(train_metrics.get("minutes", float("nan"))),
        "train_epochs": float(train_metrics.get("epochs_run", float("nan"))),
    }
    result = {
        "name": NAME,
        "command": " ".join(["python", f"benchmarks/{NAME}.py", *(sys.argv[1:] if argv is None else argv)]),
        "data": {
            "train": f"carbon-24 val.csv minus the development split ({n_train} cells), by --recipe",
            "development": f"carbon-24 val.csv, the recipe's held-out validation split ({len(dev)} cells, seed "
                           f"{recipe.get('seed')}, val_fraction {recipe.get('val_fraction')}); nothing chosen on it",
            "protocol": "headline: latent mean -> ONE decode (predicted size, composition, lattice, flow + snap steps), "
                        "CDVAE's RecEval (only valid predictions count; StructureMatcher 0.5/10/0.3); *_best_of_k: "
                        "K decodes, the one whose encoding is closest to the latent kept (labelled)",
            "differs_from_anchor": "CDVAE: 6,091 training cells, scored on carbon-24's test split; here "
                                   f"{n_train} training cells, scored on a development split of val.csv",
            "checkpoint": checkpoint_provenance(args.checkpoint),
            "machine": f"2 CPU cores, {args.threads} torch thread(s)",
        },
        "metrics": {k: (float(v) if np.isfinite(v) else None) for k, v in metrics.items()},
        "anchors": {
            "cdvae_match_rate": {"value": 0.5522, "source": "Xie et al. 2022 (CDVAE), Table 2, carbon-24, one decode, "
                                 "6,091 train (recalled, not re-checked offline)"},
            "cdvae_rmse": {"value": 0.1593, "source": "Xie et al. 2022 (CDVAE), Table 2, carbon-24 (recalled, not "
                           "re-checked offline)"},
        },
    }
    write_result(args.out, result)
    print(json.dumps(result["metrics"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
