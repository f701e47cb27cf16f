"""perov-5 reconstruction on CDVAE's protocol: encode each test structure, decode its latent mean ONCE,
compare. Best-of-K decoding is scored beside it, with K (and the flow steps) chosen on the development split.

    python benchmarks/perov5_reconstruction.py [--data ../shared/data/perov_5] [--checkpoint CKPT]
                                               [--limit N] [--dev-steps 10,25,50,100] [--dev-candidates 1,4,16,64]

The model is trained on val.csv by the recipe motif_screen/pretrained/perov5_autoencoder.yaml, which
holds 5% of val.csv out of training (its validation split, seeded): that is the **development split**.
Every decoding setting is chosen there: first the flow steps (one decode, highest match rate, ties to
fewer steps), then K for best-of-K (highest match rate, ties to smaller K). test.csv is then scored
once: one decode per latent (`match_rate`, `rmse`: CDVAE's protocol, the headline) and best of K
(`*_best_of_k`: K decodes from the latent, the one whose own encoding is closest to it kept; uses the
latent only). A prediction counts only if it is valid (CDVAE's RecEval); match =
StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3).get_rms_dist; RMSE = mean normalised RMS over matches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reconstruction import reconstruct
from results_io import add_model_options, checkpoint_provenance, load_model, write_result  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
NAME = "perov5_reconstruction"


def parse_ints(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def failure_classes(decoded, truths, rms, valid) -> dict:
    """Counts of the one-decode failures by kind: ``invalid`` (CDVAE's validity refuses the decode:
    atoms closer than 0.5 Å, or SMACT), ``composition`` (another formula or size),
    ``cation_exchange`` (the decoded cell matches once its two cations trade places: the geometry
    right, the sites' labels exchanged), ``geometry`` (anything else)."""
    from motif_screen.generation.metrics import cdvae_matcher
    from motif_screen.structures.perovskite import ANION_STATES

    matcher = cdvae_matcher()
    counts = {"invalid": 0, "composition": 0, "cation_exchange": 0, "geometry": 0}
    for p, t, r, ok in zip(decoded, truths, rms, valid):
        if r is not None:
            continue
        if p is None or not ok:
            counts["invalid"] += 1
            continue
        if p.composition.reduced_formula != t.composition.reduced_formula or len(p) != len(t):
            counts["composition"] += 1
            continue
        cations = sorted({site.specie.symbol for site in p} - set(ANION_STATES))
        if len(cations) == 2:
            exchanged = p.copy()
            exchanged.replace_species({cations[0]: cations[1], cations[1]: cations[0]})
            if matcher.get_rms_dist(exchanged, t) is not None:
                counts["cation_exchange"] += 1
                continue
        counts["geometry"] += 1
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "perov_5",
                        help="perov-5 folder (val.csv for the development split, test.csv)")
    parser.add_argument("--limit", type=int, default=None, help="first N test structures only (reduced run)")
    parser.add_argument("--dev-steps", type=parse_ints, default=[10, 25, 50, 100],
                        help="flow steps tried on the development split (one decode)")
    parser.add_argument("--dev-candidates", type=parse_ints, default=[1, 4, 16, 64],
                        help="K tried on the development split for best-of-K")
    parser.add_argument("--recipe", type=Path, default=ROOT / "motif_screen" / "pretrained" / "perov5_autoencoder.yaml",
                        help="the recipe that trained --checkpoint (its seed and val_fraction define the "
                             "development split)")
    add_model_options(parser, NAME)
    args = parser.parse_args(argv)

    import numpy as np
    import yaml

    from motif_screen.training.autoencoder import development_split
    from motif_screen.training.datasets import load_csv

    model = load_model(args)
    recipe = {**yaml.safe_load(args.recipe.read_text()), "data": str(args.data / "val.csv")}
    dev_structures, _, n_train = development_split(recipe, model)
    test = load_csv(args.data / "test.csv", [], limit=args.limit)

    def best(table: dict) -> int:
        """the setting with the highest development match rate; ties go to the cheaper (smaller) one"""
        top = max(r["match_rate"] for r in table.values())
        return min(k for k, r in table.items() if r["match_rate"] >= top - 1e-12)

    metrics: dict = {"n_dev": len(dev_structures)}
    dev_steps = {n: reconstruct(model, dev_structures, n, 1, args.seed)[0] for n in args.dev_steps}
    steps = best(dev_steps)
    dev_k = {k: (dev_steps[steps] if k == 1 else reconstruct(model, dev_structures, steps, k, args.seed)[0])
             for k in args.dev_candidates}
    k_best = best(dev_k)
    for n, rec in dev_steps.items():
        metrics[f"dev_match_rate_steps_{n}"] = rec["match_rate"]
        metrics[f"dev_rmse_steps_{n}"] = rec["rmse"]
    for k, rec in dev_k.items():
        metrics[f"dev_match_rate_k_{k}"] = rec["match_rate"]
        metrics[f"dev_rmse_k_{k}"] = rec["rmse"]
    print(f"development split ({len(dev_structures)} cells): steps {steps}, K {k_best}", file=sys.stderr)

    # the test set, scored once per chosen setting
    structures = test.structures
    single, decoded_single, seconds_single = reconstruct(model, structures, steps, 1, args.seed)
    several, _, seconds_several = (reconstruct(model, structures, steps, k_best, args.seed) if k_best > 1
                                   else (single, decoded_single, seconds_single))
    same_comp = [p is not None and p.composition.reduced_formula == t.composition.reduced_formula and len(p) == len(t)
                 for p, t in zip(decoded_single, structures)]
    lattice_err = [abs(p.lattice.a - t.lattice.a) for p, t in zip(decoded_single, structures) if p is not None]
    failures = failure_classes(decoded_single, structures, single["per_structure_rms"], single["per_structure_valid"])
    metrics.update({
        "match_rate": single["match_rate"],
        "rmse": single["rmse"],
        "match_rate_rms_below_0_05": single["precise_0_05"],
        "match_rate_rms_below_0_1": single["precise_0_1"],
        "valid_rate": single["valid_rate"],
        "composition_accuracy": float(np.mean(same_comp)),
        "lattice_a_mae_angstrom": float(np.mean(lattice_err)),
        "decode_s_per_structure": seconds_single / len(structures),
        "flow_steps": steps,
        "candidates_best_of_k": k_best,
        "match_rate_best_of_k": several["match_rate"],
        "rmse_best_of_k": several["rmse"],
        "match_rate_best_of_k_rms_below_0_05": several["precise_0_05"],
        "valid_rate_best_of_k": several["valid_rate"],
        "decode_s_per_structure_best_of_k": seconds_several / len(structures),
        **{f"fail_{k}": v / len(structures) for k, v in failures.items()},
        "n_test": len(structures),
        "n_unknown_elements": single["n_unknown_elements"],
        "n_train": n_train,
    })
    result = {
        "name": NAME,
        "command": " ".join(["python", f"benchmarks/{NAME}.py", *(sys.argv[1:] if argv is None else argv)]),
        "data": {
            "train": f"perov-5 val.csv minus the development split ({n_train} cells), by --recipe",
            "development": f"perov-5 val.csv, the recipe's held-out validation split ({len(dev_structures)} cells, "
                           f"seed {recipe.get('seed')}, val_fraction {recipe.get('val_fraction')}): chose flow steps "
                           f"{steps} of {args.dev_steps} and K = {k_best} of {args.dev_candidates}",
            "test": f"perov-5 test.csv, {len(structures)} cells" + (" (REDUCED: --limit)" if args.limit else " (all)")
                    + "; scored once per chosen setting",
            "checkpoint": checkpoint_provenance(args.checkpoint),
            "protocol": "headline (match_rate, rmse): latent mean -> ONE decode (predicted size, composition, lattice; "
                        f"{steps} flow steps from uniform noise, then the model's denoising snap steps), CDVAE's "
                        f"protocol; *_best_of_k: {k_best} decodes per latent, the one whose encoding is closest to the "
                        "latent kept "
                        "(not CDVAE's protocol: labelled); only valid predictions count (CDVAE RecEval)",
            "machine": f"2 CPU cores, {args.threads} torch thread(s); timings are wall-clock",
        },
        "metrics": metrics,
        "anchors": {
            "cdvae_match_rate": {"value": 0.9752,
                                 "source": "Xie et al. 2022 (CDVAE), Table 2, perov-5, one decode, trained on 11,356"},
            "cdvae_rmse": {"value": 0.0156, "source": "Xie et al. 2022 (CDVAE), Table 2"},
            "ftcp_match_rate": {"value": 0.9934, "source": "Xie et al. 2022, Table 2 (FTCP), trained on 11,356"},
            "ftcp_rmse": {"value": 0.0259, "source": "Xie et al. 2022, Table 2 (FTCP)"},
            "target_match_rate": {"value": 0.99, "source": "issue 17: >= 99% / RMSE <= 0.015 with one decode"},
            "target_rmse": {"value": 0.015, "source": "issue 17"},
        },
    }
    result["metrics"] = {k: (float(v) if np.isfinite(v) else None) for k, v in metrics.items()}
    write_result(args.out, result)
    print(json.dumps(result["metrics"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
