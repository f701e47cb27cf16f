"""``motif-screen generate MODE``: hypothetical structures from the autoencoder, as CIFs + a provenance CSV."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from motif_screen import limits
from motif_screen.cli.arguments import bounded
from motif_screen.errors import InputError
from motif_screen.safe_paths import OutputFolder
from motif_screen.structures.validity import check_composition_text

if TYPE_CHECKING:
    from pymatgen.core import Molecule, Structure

HELP = "generate hypothetical structures (prior, perturb, interpolate, guided, constrained)"
DESCRIPTION = f"""\
Decode latent vectors of the structure autoencoder into hypothetical structures.

  motif-screen generate prior --n 100 -o out/
  motif-screen generate perturb --seeds SrTiO3.cif BaTiO3.cif --n 50 --scale 0.3 -o out/
  motif-screen generate interpolate --seeds a.cif b.cif --n 10 -o out/
  motif-screen generate guided --target formation_energy_per_atom --goal minimize --n 100 -o out/
  motif-screen generate constrained --composition Ba-Ti-O --n 100 -o out/    (or BaTiO3)

Writes OUT/<id>.cif for every valid structure, OUT/invalid/<id>.cif for the others, and
OUT/generated.csv with one row per structure: mode, parents, model name/version, formula,
validity and the reason when invalid, head predictions and the latent vector. A folder that
holds an earlier run's output is refused unless --overwrite (which removes that output first).
The model is a checkpoint file (default: the shipped perov-5 autoencoder, motif_screen/pretrained/).

Limits (motif_screen/limits.py): --n up to {limits.STRUCTURES_PER_CALL.high:,};
--candidates up to {limits.DECODE_CANDIDATES.high}; --n × --candidates up to {limits.MAX_DECODED_PER_CALL:,};
--steps up to {limits.FLOW_STEPS.high:,}; --temperature above 0, up to {limits.TEMPERATURE.high:g};
--scale up to {limits.PERTURB_SCALE.high:g}; seed structures of up to {limits.MAX_ATOMS_PER_STRUCTURE:,} atoms.
"""

MODES = ("prior", "perturb", "interpolate", "guided", "constrained")
CSV_NAME = "generated.csv"
INVALID_FOLDER = "invalid"
# the structure files generate writes (and --overwrite removes): <mode>-<6 digits>.cif|.xyz
OWN_FILE = re.compile(rf"^({'|'.join(MODES)})-\d{{6}}\.(cif|xyz)$")


def add_arguments(parser) -> None:
    parser.add_argument("mode", choices=MODES, help="how latent vectors are chosen")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the structures and generated.csv an earlier run wrote into --out "
        "(default: refuse, so no run mixes its files with another's)",
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="autoencoder checkpoint (default: the shipped perov-5 model)"
    )
    parser.add_argument(
        "--n",
        type=bounded(limits.STRUCTURES_PER_CALL),
        default=100,
        help="structures to generate (interpolate: points on the path)",
    )
    parser.add_argument("--seed", type=bounded(limits.SEED), default=0, help="random seed (same seed, same structures)")
    parser.add_argument(
        "--seeds", nargs="+", default=None, help="seed structure files/folders (perturb; interpolate takes two)"
    )
    parser.add_argument(
        "--scale",
        type=bounded(limits.PERTURB_SCALE),
        default=0.3,
        help="perturb: step size in prior units (default 0.3)",
    )
    parser.add_argument(
        "--temperature",
        type=bounded(limits.TEMPERATURE),
        default=1.0,
        help="prior: spread of each of the prior's Gaussians, as a factor (default 1.0)",
    )
    parser.add_argument(
        "--target", default=None, help="guided: property head to follow, e.g. formation_energy_per_atom"
    )
    parser.add_argument("--goal", default="minimize", help="guided: minimize, maximize or a target value")
    parser.add_argument(
        "--method", choices=("gradient", "rejection"), default="gradient", help="guided: how to use the head"
    )
    parser.add_argument(
        "--composition", default=None, help="constrained: chemical system (Ba-Ti-O) or formula (BaTiO3)"
    )
    parser.add_argument(
        "--steps", type=bounded(limits.FLOW_STEPS), default=None, help="flow integration steps (default: the model's)"
    )
    parser.add_argument(
        "--any-composition",
        action="store_true",
        help="let the decoder emit compositions that cannot be a compound (default: the most probable "
        "composition that passes SMACT charge balance for crystals, valence pairing for molecules)",
    )
    parser.add_argument(
        "--candidates",
        type=bounded(limits.DECODE_CANDIDATES),
        default=8,
        help="structures decoded per latent; the one the encoder maps closest to the latent is kept "
        "(default 8: slower than 1, far more often the structure the latent describes)",
    )


def default_model_path() -> Path:
    return Path(__file__).resolve().parents[1] / "pretrained" / "perov5_autoencoder.pt"


def check_request(args) -> None:
    """Everything about the request that can be checked without the model: the options each
    mode needs, the composition, the total decoding work. Raises InputError."""
    if args.mode in ("perturb", "interpolate") and not args.seeds:
        raise InputError("this mode needs --seeds (structure files or folders)")
    if args.mode == "guided" and not args.target:
        raise InputError("guided generation needs --target (a property the model's heads predict)")
    if args.mode == "constrained":
        if not args.composition:
            raise InputError("constrained generation needs --composition, e.g. Ba-Ti-O or BaTiO3")
        check_composition_text(args.composition)
    decoded = args.n * args.candidates
    if decoded > limits.MAX_DECODED_PER_CALL:
        raise InputError(
            f"--n {args.n:,} × --candidates {args.candidates} asks to decode {decoded:,} structures; "
            f"one call decodes at most {limits.MAX_DECODED_PER_CALL:,} (lower --n or --candidates)"
        )


def _read_seeds(paths) -> list[tuple[str, Structure | Molecule]]:
    from motif_screen.structures.io import read_structures

    return read_structures(list(paths))  # every failure names its file


def generate(args, model, seeds=None):
    """The GenerationReport for the parsed arguments (kept apart from file writing for tests);
    ``seeds``: the ``(name, structure)`` pairs of --seeds when already read."""
    from motif_screen import generation

    check_request(args)
    decoding = {"steps": args.steps, "candidates": args.candidates}
    free = {**decoding, "charge_balanced": not args.any_composition}  # modes where the decoder picks compositions
    if args.mode == "prior":
        return generation.sample_prior(model, args.n, seed=args.seed, temperature=args.temperature, **free)
    if args.mode == "perturb":
        pairs = seeds if seeds is not None else _read_seeds(args.seeds)
        return generation.perturb(
            model,
            [s for _, s in pairs],
            args.n,
            scale=args.scale,
            seed=args.seed,
            names=[name for name, _ in pairs],
            **free,
        )
    if args.mode == "interpolate":
        pairs = seeds if seeds is not None else _read_seeds(args.seeds)
        if len(pairs) != 2:
            raise InputError(f"interpolate needs exactly two seed structures, got {len(pairs)}")
        (na, a), (nb, b) = pairs
        return generation.interpolate(
            model,
            a,
            b,
            steps=args.n,
            seed=args.seed,
            names=[na, nb],
            flow_steps=args.steps,
            candidates=args.candidates,
            charge_balanced=free["charge_balanced"],
        )
    if args.mode == "guided":
        return generation.guided(model, args.n, args.target, args.goal, seed=args.seed, method=args.method, **free)
    return generation.constrained(model, args.n, args.composition, seed=args.seed, **decoding)


# --- the output folder -----------------------------------------------------------------------
def previous_output(out: OutputFolder) -> list[tuple[OutputFolder, str]]:
    """The files an earlier run wrote into ``out``: generated.csv and the structure files named
    like generate's own (``<mode>-NNNNNN.cif|.xyz``) in ``out`` and ``out/invalid``. Files of
    any other name are the user's and are never touched."""
    found = [(out, name) for name in out.names() if name == CSV_NAME or OWN_FILE.match(name)]
    if INVALID_FOLDER in out.names():
        invalid = out.subfolder(INVALID_FOLDER)
        found += [(invalid, name) for name in invalid.names() if OWN_FILE.match(name)]
    return [(folder, name) for folder, name in found if folder.is_file(name)]


def prepare_output(path: Path, overwrite: bool) -> OutputFolder:
    """The output folder, checked before any work: a file, a device or an unwritable path is
    refused; an earlier run's output is refused unless ``overwrite`` (then removed at writing)."""
    out = OutputFolder(path)
    previous = previous_output(out)
    if previous and not overwrite:
        out.close()
        structures = sum(name != CSV_NAME for _, name in previous)
        raise InputError(
            f"{path} already holds the output of an earlier run ({structures} structure file(s)"
            f"{' and ' + CSV_NAME if any(name == CSV_NAME for _, name in previous) else ''}); "
            "pass --overwrite to replace it, or choose another folder"
        )
    return out


def write_report(report, out) -> Path:
    """CIFs (valid ones at the top, invalid ones under invalid/) and the provenance CSV, written
    inside ``out`` (a path or an :class:`OutputFolder`) only. Every file's text is made before
    the first is written; an earlier run's files are removed first, so the folder holds exactly
    what generated.csv lists; generated.csv is written last."""
    import pandas as pd

    from motif_screen.structures.io import cif_text

    folder = out if isinstance(out, OutputFolder) else OutputFolder(out)
    files, rows = [], []
    for i, item in enumerate(report):
        ident = f"{report.mode}-{i:06d}"
        periodic = hasattr(item.structure, "lattice")
        name = f"{ident}.cif" if periodic else f"{ident}.xyz"
        text = cif_text(item.structure, ident) if periodic else item.structure.to(fmt="xyz")
        files.append((item.valid, name, text))
        rows.append({"id": ident, "file": name if item.valid else f"{INVALID_FOLDER}/{name}", **item.provenance()})
    csv_text = pd.DataFrame(rows).to_csv(index=False)
    for where, name in previous_output(folder):
        where.remove(name)
    invalid = folder.subfolder(INVALID_FOLDER) if any(not valid for valid, _, _ in files) else None
    for valid, name, text in files:
        if valid:
            folder.write(name, text)
        else:
            assert invalid is not None  # made above when any file is invalid
            invalid.write(name, text)
    return folder.write(CSV_NAME, csv_text)


def run(args) -> int:
    check_request(args)  # cheap checks first: no model is loaded for a request that cannot run
    seeds = _read_seeds(args.seeds) if args.mode in ("perturb", "interpolate") else None
    out = prepare_output(args.out, args.overwrite)

    import torch

    from motif_screen.model.checkpoint import load_autoencoder

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    model = load_autoencoder(args.model or default_model_path())
    report = generate(args, model, seeds)
    with out:
        csv = write_report(report, out)
    print(report.summary())
    print(
        f"wrote {len(report.valid)} valid structure(s) to {args.out}/, "
        f"{len(report) - len(report.valid)} invalid to {args.out}/{INVALID_FOLDER}/, provenance in {csv}"
    )
    return 0
