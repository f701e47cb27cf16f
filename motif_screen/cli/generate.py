"""``motif-screen generate MODE``: hypothetical structures from the autoencoder, as CIFs + a provenance CSV."""

from __future__ import annotations

from pathlib import Path

from motif_screen.errors import InputError

HELP = "generate hypothetical structures (prior, perturb, interpolate, guided, constrained)"
DESCRIPTION = """\
Decode latent vectors of the structure autoencoder into hypothetical structures.

  motif-screen generate prior --n 100 -o out/
  motif-screen generate perturb --seeds SrTiO3.cif BaTiO3.cif --n 50 --scale 0.3 -o out/
  motif-screen generate interpolate --seeds a.cif b.cif --n 10 -o out/
  motif-screen generate guided --target formation_energy_per_atom --goal minimize --n 100 -o out/
  motif-screen generate constrained --composition Ba-Ti-O --n 100 -o out/    (or BaTiO3)

Writes OUT/<id>.cif for every valid structure, OUT/invalid/<id>.cif for the others, and
OUT/generated.csv with one row per structure: mode, parents, model name/version, formula,
validity and the reason when invalid, head predictions and the latent vector. The model is a
checkpoint file (default: the shipped perov-5 autoencoder, motif_screen/pretrained/).
"""

MODES = ("prior", "perturb", "interpolate", "guided", "constrained")
CSV_NAME = "generated.csv"


def add_arguments(parser) -> None:
    parser.add_argument("mode", choices=MODES, help="how latent vectors are chosen")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--model", type=Path, default=None, help="autoencoder checkpoint (default: the shipped perov-5 model)")
    parser.add_argument("--n", type=int, default=100, help="structures to generate (interpolate: points on the path)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same structures)")
    parser.add_argument("--seeds", nargs="+", default=None, help="seed structure files/folders (perturb; interpolate takes two)")
    parser.add_argument("--scale", type=float, default=0.3, help="perturb: step size in prior units (default 0.3)")
    parser.add_argument("--temperature", type=float, default=1.0, help="prior: spread of each of the prior's Gaussians, as a factor (default 1.0)")
    parser.add_argument("--target", default=None, help="guided: property head to follow, e.g. formation_energy_per_atom")
    parser.add_argument("--goal", default="minimize", help="guided: minimize, maximize or a target value")
    parser.add_argument("--method", choices=("gradient", "rejection"), default="gradient", help="guided: how to use the head")
    parser.add_argument("--composition", default=None, help="constrained: chemical system (Ba-Ti-O) or formula (BaTiO3)")
    parser.add_argument("--steps", type=int, default=None, help="flow integration steps (default: the model's)")
    parser.add_argument("--any-composition", action="store_true",
                        help="let the decoder emit compositions that cannot be a compound (default: the most probable "
                             "composition that passes SMACT charge balance for crystals, valence pairing for molecules)")
    parser.add_argument("--candidates", type=int, default=8,
                        help="structures decoded per latent; the one the encoder maps closest to the latent is kept "
                             "(default 8: slower than 1, far more often the structure the latent describes)")


def default_model_path() -> Path:
    return Path(__file__).resolve().parents[1] / "pretrained" / "perov5_autoencoder.pt"


def _read_seeds(paths) -> list[tuple[str, object]]:
    from motif_screen.structures.io import read_structures

    if not paths:
        raise InputError("this mode needs --seeds (structure files or folders)")
    for p in paths:
        if not Path(p).exists():
            raise InputError(f"seed file {p} does not exist")
    pairs = read_structures(list(paths))
    if not pairs:
        raise InputError(f"no structures found in {' '.join(map(str, paths))}")
    return pairs


def generate(args, model):
    """The GenerationReport for the parsed arguments (kept apart from file writing for tests)."""
    from motif_screen import generation

    decoding = {"steps": args.steps, "candidates": args.candidates}
    free = {**decoding, "charge_balanced": not args.any_composition}  # modes where the decoder picks compositions
    if args.mode == "prior":
        return generation.sample_prior(model, args.n, seed=args.seed, temperature=args.temperature, **free)
    if args.mode == "perturb":
        pairs = _read_seeds(args.seeds)
        return generation.perturb(model, [s for _, s in pairs], args.n, scale=args.scale, seed=args.seed,
                                  names=[name for name, _ in pairs], **free)
    if args.mode == "interpolate":
        pairs = _read_seeds(args.seeds)
        if len(pairs) != 2:
            raise InputError(f"interpolate needs exactly two seed structures, got {len(pairs)}")
        (na, a), (nb, b) = pairs
        return generation.interpolate(model, a, b, steps=args.n, seed=args.seed, names=[na, nb], flow_steps=args.steps,
                                      candidates=args.candidates, charge_balanced=free["charge_balanced"])
    if args.mode == "guided":
        if not args.target:
            raise InputError("guided generation needs --target (a property the model's heads predict)")
        return generation.guided(model, args.n, args.target, args.goal, seed=args.seed, method=args.method, **free)
    if not args.composition:
        raise InputError("constrained generation needs --composition, e.g. Ba-Ti-O or BaTiO3")
    return generation.constrained(model, args.n, args.composition, seed=args.seed, **decoding)


def write_report(report, out: Path) -> Path:
    """CIFs (valid ones at the top, invalid ones under invalid/) and the provenance CSV."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, item in enumerate(report):
        ident = f"{report.mode}-{i:06d}"
        folder = out if item.valid else out / "invalid"
        folder.mkdir(exist_ok=True)
        if hasattr(item.structure, "lattice"):
            item.structure.to(filename=str(folder / f"{ident}.cif"))
            file = folder / f"{ident}.cif"
        else:
            item.structure.to(filename=str(folder / f"{ident}.xyz"))
            file = folder / f"{ident}.xyz"
        rows.append({"id": ident, "file": str(file.relative_to(out)), **item.provenance()})
    csv = out / CSV_NAME
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def run(args) -> int:
    import torch

    from motif_screen.model.checkpoint import load_autoencoder

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    model = load_autoencoder(args.model or default_model_path())
    report = generate(args, model)
    csv = write_report(report, args.out)
    print(report.summary())
    print(f"wrote {len(report.valid)} valid structure(s) to {args.out}/, "
          f"{len(report) - len(report.valid)} invalid to {args.out}/invalid/, provenance in {csv}")
    return 0
