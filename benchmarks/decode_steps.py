"""How many field evaluations decoding needs: speed and quality per (flow steps, snap steps) setting.

    python benchmarks/decode_steps.py [--checkpoint CKPT] [--n 1000] [--recon 200]
                                      [--settings 50:5,10:5,5:5,5:3,3:3]

This benchmark chooses a setting (the demo's 10 + 5), so it is measured on the **development
split** (the cells the recipe held out of training, perov-5 val.csv), never on test cells. Every
setting decodes the same prior latents (--n, one decode each, charge-balanced compositions) and the
latents of the development cells, from the same noise seed. Reported
per setting ``s{flow}_{snap}_*``: decoding seconds for the prior samples (1 torch thread unless
--threads), CDVAE validity, in-batch uniqueness of the valid ones (StructureMatcher 0.5/10/0.3),
COV-R / COV-P against the development cells (CDVAE's perov-5 recipe), COV-P of the development
cells' own one-decode reconstructions against them (``cov_p_reconstructions``: the decoder's share
of the precision gap, where the latent is right), and the single-decode reconstruction match rate
and share matched with RMS < 0.05 ("precise"). The decoding cost is
(flow + snap) evaluations of the velocity field, so this is the curve a user trades along with
``generate --steps`` / the campaign's ``generation.steps``; the snap count is the checkpoint's
``DecoderConfig.snap_steps``, overridden here per setting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from results_io import add_model_options, checkpoint_provenance, load_model, write_result  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
NAME = "decode_steps"


def _settings(text: str) -> list[tuple[int, int]]:
    """Parse "50:5,10:5" into [(50, 5), (10, 5)]: at least one flow step, zero or more snap steps."""
    pairs = []
    for item in text.split(","):
        flow, _, snap = item.partition(":")
        try:
            pair = (int(flow), int(snap or 0))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not flow:snap step counts (e.g. 10:5)") from None
        if pair[0] < 1 or pair[1] < 0:
            raise argparse.ArgumentTypeError(f"{item!r}: need at least 1 flow step and 0 or more snap steps")
        pairs.append(pair)
    return pairs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "perov_5")
    parser.add_argument("--n", type=int, default=1000, help="prior samples per setting")
    parser.add_argument("--recipe", type=Path, default=ROOT / "motif_screen" / "pretrained" / "perov5_autoencoder.yaml",
                        help="the recipe that trained --checkpoint (it defines the development split)")
    parser.add_argument("--settings", type=_settings, default=_settings("50:5,10:5,5:5,5:3,3:3"),
                        help="comma-separated flow:snap step counts")
    add_model_options(parser, NAME)
    args = parser.parse_args(argv)
    started = time.time()

    import numpy as np
    import torch
    import yaml

    from motif_screen.generation import sample_prior
    from motif_screen.generation.metrics import CDVAE_COV_CUTOFFS_PEROV5, cdvae_coverage, cdvae_fingerprints, cdvae_validity, reconstruction_metrics
    from motif_screen.structures.dedup import unique_indices
    from motif_screen.training.autoencoder import development_split

    model = load_model(args)
    recipe = {**yaml.safe_load(args.recipe.read_text()), "data": str(args.data / "val.csv")}
    references, ids, _ = development_split(recipe, model)
    ref_struct, ref_comp = cdvae_fingerprints(references)
    targets = references
    z_recon = model.encode(targets, names=ids)
    sample_prior(model, 8, seed=args.seed + 99, steps=2)  # warm-up: lazy imports, allocator, SMACT caches

    metrics: dict[str, float] = {}
    for flow, snap in args.settings:
        model.decoder.config.snap_steps = snap
        prefix = f"s{flow}_{snap}_"
        t0 = time.time()
        report = sample_prior(model, args.n, seed=args.seed, steps=flow)
        seconds = time.time() - t0
        samples = [g.structure for g in report]
        valid = [s for s in samples if all(cdvae_validity(s))]
        cov = cdvae_coverage(*cdvae_fingerprints(samples), ref_struct, ref_comp,
                             CDVAE_COV_CUTOFFS_PEROV5["struct"], CDVAE_COV_CUTOFFS_PEROV5["comp"])
        decoded = model.decode(z_recon, steps=flow, generator=torch.Generator().manual_seed(args.seed), candidates=1)
        rec = reconstruction_metrics(decoded, targets, [all(cdvae_validity(s)) for s in decoded])
        # the same precision measure on decodes of the references' own latents: what the decoder loses
        # even where the latent is right, apart from what prior latents off the data lose
        cov_rec = cdvae_coverage(*cdvae_fingerprints(decoded), ref_struct, ref_comp,
                                 CDVAE_COV_CUTOFFS_PEROV5["struct"], CDVAE_COV_CUTOFFS_PEROV5["comp"])
        metrics.update({
            prefix + "field_evaluations": flow + snap,
            prefix + "decode_s": seconds,
            prefix + "samples_per_s": args.n / seconds,
            prefix + "validity": len(valid) / args.n,
            prefix + "uniqueness": len(unique_indices(valid)) / max(len(valid), 1),
            prefix + "cov_r": cov["cov_r"],
            prefix + "cov_p": cov["cov_p"],
            prefix + "cov_p_reconstructions": cov_rec["cov_p"],
            prefix + "match_rate": rec["match_rate"],
            prefix + "match_rate_rms_below_0_05": float(np.mean([r is not None and r < 0.05 for r in rec["per_structure_rms"]])),
        })
        print(json.dumps({k: round(v, 4) for k, v in metrics.items() if k.startswith(prefix)}), flush=True)

    result = {
        "name": NAME,
        "command": " ".join(["python", "benchmarks/decode_steps.py", *(argv if argv is not None else sys.argv[1:])]),
        "data": {
            "samples": f"{args.n} prior samples of {args.checkpoint.name} per setting, one decode each, charge-balanced compositions, "
                       "the same latents and noise seed for every setting",
            "coverage": f"CDVAE perov-5 COV recipe against the {len(references)} cells of the development split "
                        "(perov-5 val.csv, held out of training by the recipe)",
            "reconstruction": f"the {len(targets)} development cells, one decode per latent mean (CDVAE's protocol)",
            "checkpoint": checkpoint_provenance(args.checkpoint),
            "machine": f"2 CPU cores, {args.threads} torch thread(s); wall-clock",
        },
        "metrics": {**metrics, "torch_threads": args.threads, "minutes": (time.time() - started) / 60},
        "anchors": {
            "shipped_default": {"value": 55, "source": "DecoderConfig: 50 flow + 5 snap steps (perov5_generation / perov5_reconstruction)"},
            "demo_setting": {"value": 15, "source": "demo campaign and generation_speed.py: 10 flow + 5 snap steps"},
        },
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
