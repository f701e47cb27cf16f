"""``motif-screen label``: relax a structure set with a local oracle (CHGNet) into a JSON-lines label file."""

from __future__ import annotations

from pathlib import Path

from motif_screen import keys, limits
from motif_screen.cli.arguments import bounded
from motif_screen.errors import InputError

HELP = "label structures with a locally running oracle (CHGNet), for training the heads on its values"
DESCRIPTION = """\
Relax every structure with a local oracle and write one JSON line per structure: id, input and
relaxed structure, energy, energy per atom, formation energy per atom against the oracle's own
elemental references (the number a campaign with this oracle stores), converged, steps, source and
oracle version, or `error` with the reason (failures are recorded, never zeros, and left out of
training).

  motif-screen label structures/ more.cif cells.csv -o labels.jsonl
  motif-screen label --generate perovskite --n 1000 --model perov5 --seed 7 -o generated.jsonl

Inputs: CIF/POSCAR/extxyz/JSON files, folders of them, or CDVAE-style CSVs (`cif` column). With
--generate, candidates are decoded exactly as a campaign's round 0 decodes them (family mode,
--flow-steps 10 by default, --candidates per latent as the model sets it), and the valid ones are
labelled. The run is resumable: records are keyed by structure fingerprint, so running the same
command again after an interruption labels only what is missing. Relaxation settings default to
the demo campaign's (CHGNet: at most 100 FIRE steps, fmax 0.1 eV/Å).
"""


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="*", type=Path, help="structure files, folders or CSVs")
    parser.add_argument("-o", "--out", type=Path, required=True, help="label file (.jsonl), appended to")
    parser.add_argument("--oracle", default=keys.SOURCE_CHGNET, help="local oracle (default: chgnet)")
    parser.add_argument("--steps", type=bounded(limits.Bound(1, 5000, integer=True)), default=None)
    parser.add_argument("--fmax", type=bounded(limits.Bound(1e-4, 10.0)), default=None, help="eV/Å")
    gen = parser.add_argument_group("generated candidates")
    gen.add_argument("--generate", default=None, metavar="FAMILY", help="decode candidates of this family")
    gen.add_argument("--n", type=bounded(limits.STRUCTURES_PER_CALL), default=100, help="latents to decode")
    gen.add_argument("--model", default="perov5", help="shipped model name or an autoencoder checkpoint file")
    gen.add_argument("--seed", type=bounded(limits.SEED), default=0, help="generation (or --sample) seed")
    gen.add_argument("--flow-steps", type=bounded(limits.FLOW_STEPS), default=10)
    gen.add_argument("--candidates", type=bounded(limits.DECODE_CANDIDATES), default=None)
    parser.add_argument(
        "--sample",
        type=bounded(limits.STRUCTURES_PER_CALL),
        default=None,
        help="label a random N of the input structures (chosen with --seed)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _model(name: str):
    from motif_screen.model.checkpoint import load_autoencoder
    from motif_screen.pretrained import SHIPPED, shipped_checkpoint

    path = shipped_checkpoint(name) if name in SHIPPED else Path(name)
    if not path.is_file():
        raise InputError(f"--model {name}: neither a shipped model ({', '.join(SHIPPED)}) nor a checkpoint file")
    return load_autoencoder(path)


def run(args) -> int:
    from motif_screen.training import labels

    if bool(args.inputs) == bool(args.generate):
        raise InputError("give structure files/folders/CSVs, or --generate FAMILY, not both and not neither")
    labels.local_oracle(args.oracle)
    if args.generate and args.generate not in labels.FAMILIES:
        raise InputError(f"unknown family {args.generate!r}; families: {', '.join(labels.FAMILIES)}")
    labels.check_output(args.out)
    settings = {k: v for k, v in (("steps", args.steps), ("fmax", args.fmax)) if v is not None}
    if args.generate:
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))  # the oracle runs one structure at a time
        model = _model(args.model)
        items, tally = labels.generated_items(
            model, args.generate, args.n, args.seed, steps=args.flow_steps, candidates=args.candidates
        )
        print(f"decoded {tally['decoded']} {args.generate} candidates, {tally['valid']} valid ({tally['seconds']} s)")
    else:
        from motif_screen.structures.io import read_structures

        items = []
        for source in args.inputs:
            items += labels.file_items(read_structures(source), str(source))
        if args.sample is not None and args.sample < len(items):
            import numpy as np

            keep = sorted(np.random.default_rng(args.seed).choice(len(items), size=args.sample, replace=False))
            items = [items[i] for i in keep]
    counts = labels.label_structures(items, args.out, args.oracle, settings=settings, progress=not args.quiet)
    print(
        f"{args.out}: {counts['labelled']} labelled, {counts['failed']} failed (recorded with the reason), "
        f"{counts['already']} already there, {counts['duplicates']} duplicates, "
        f"{counts['unfingerprintable']} not fingerprintable, in {counts['seconds']:.0f} s"
    )
    return 0
