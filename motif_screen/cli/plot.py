"""``motif-screen plot latent``: a 2D map of the autoencoder's latent space, as a PNG."""

from __future__ import annotations

import os
from pathlib import Path

from motif_screen.errors import InputError
from motif_screen.plotting import draw_map, pca_2d
from motif_screen.safe_paths import replaced_file

HELP = "plot the latent space (a 2D PCA map coloured by a property or by motif)"
DESCRIPTION = """\
  motif-screen plot latent --data perov_5/test.csv --color-by heat_ref -o map.png  # a CDVAE-style CSV
  motif-screen plot latent --data structures/ --color-by motif -o motifs.png
  motif-screen plot latent --campaign demo --color-by formation_energy_per_atom -o campaign.png

Structures (a CSV with a `cif` column, CIF/POSCAR files or folders) are encoded with --model
(default: the shipped perov-5 autoencoder); --campaign reads the latents stored on that
campaign's candidates instead. The map is the first two principal components of the latent means.
--color-by: a CSV column, a property the model's heads predict (predicted), `motif` (the most
common site motif label of each structure), `element:<El>` (contains it or not), or `formula`
for campaigns' oracle values see `motif-screen query`.
"""

MAX_POINTS = 50_000


def add_arguments(parser) -> None:
    from motif_screen.cli.common import add_db_options

    parser.add_argument("what", choices=("latent",), help="what to plot")
    parser.add_argument(
        "-o", "--out", type=Path, required=True, help="PNG file to write (.png is added when the name has no suffix)"
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="autoencoder checkpoint (default: the shipped perov-5 model)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", nargs="+", default=None, help="CSV (cif column) or structure files/folders")
    source.add_argument("--campaign", default=None, help="use the latents stored on this campaign's candidates")
    parser.add_argument(
        "--color-by", default="motif", help="CSV column, predicted property, motif, element:<El> (default: motif)"
    )
    parser.add_argument("--limit", type=int, default=5000, help="at most this many structures (default 5000)")
    parser.add_argument("--title", default=None)
    add_db_options(parser)


# --- pure helpers ------------------------------------------------------------------------------
def dominant_motif(structure) -> str:
    """The structure's motif signature: its distinct site environments, e.g.
    ``cuboctahedral+octahedral`` for a cubic perovskite (``none`` when no site is classified)."""
    from motif_screen.structures.motifs import motif_labels

    try:
        labels = motif_labels(structure)
    except Exception:
        return "unassigned"
    environments = sorted({label.split(":")[1] for label in labels if label.count(":") == 1})
    return "+".join(environments) if environments else "none"


# --- data sources ------------------------------------------------------------------------------
def _structures_and_columns(paths, limit: int):
    """(ids, structures, {column: values}) from CSVs or structure files."""
    import pandas as pd

    from motif_screen.structures.io import read_structures, read_table

    pairs = read_structures(list(paths))[:limit]
    columns = {}
    if len(paths) == 1 and str(paths[0]).endswith(".csv"):
        frame = read_table(paths[0]).iloc[: len(pairs)]
        columns = {
            c: frame[c].tolist() for c in frame.columns if c not in ("cif",) and pd.api.types.is_numeric_dtype(frame[c])
        }
    return [i for i, _ in pairs], [s for _, s in pairs], columns


def _colour_values(color_by: str, structures, columns: dict, predictions: dict):
    if color_by in columns:
        return [float(v) for v in columns[color_by]]
    if color_by in predictions:
        return [float(v) for v in predictions[color_by]]
    if color_by == "motif":
        return [dominant_motif(s) for s in structures]
    if color_by == "formula":
        return [s.composition.reduced_formula for s in structures]
    if color_by.startswith("element:"):
        symbol = color_by.split(":", 1)[1]
        return [
            f"contains {symbol}" if symbol in {e.symbol for e in s.composition.elements} else f"no {symbol}"
            for s in structures
        ]
    known = sorted(set(columns) | set(predictions) | {"motif", "formula", "element:<El>"})
    raise InputError(f"cannot colour by {color_by!r}; choose one of {', '.join(known)}")


def _campaign_points(args, color_by: str):
    import numpy as np

    from motif_screen.cli.common import connect_from_args
    from motif_screen.db.repository import Repository

    conn, _ = connect_from_args(args, readonly=True)
    docs = Repository(conn).candidates(args.campaign, limit=args.limit)
    docs = [d for d in docs if d.latent]
    if not docs:
        raise InputError(f"campaign {args.campaign!r} has no candidates with stored latents")
    latents = np.array([list(d.latent) for d in docs])
    values: list[str | float] = []
    for d in docs:
        if color_by == "motif":
            envs = sorted({label.split(":")[1] for label in (d.motif_labels or []) if label.count(":") == 1})
            values.append("+".join(envs) if envs else "none")
        elif color_by == "status":
            values.append(d.status)
        elif color_by == "formula":
            values.append(d.formula)
        elif color_by in (d.oracle or {}):
            values.append(float(d.oracle[color_by]))
        elif d.predictions and color_by in d.predictions:
            values.append(float(d.predictions[color_by].mean))
        else:
            values.append(float("nan"))
    return latents, values


def output_path(out: Path) -> Path:
    """The file the plot goes to: ``out`` itself, or ``out.png`` for a new name without a suffix
    (matplotlib would add it silently). A folder is refused, not written beside."""
    if out.is_dir():
        raise InputError(f"-o {out} is a folder; give the PNG file to write, e.g. {out / 'latent_map.png'}")
    if out.suffix or os.path.lexists(out):  # an existing path is the one asked for (a device is refused later)
        return out
    return out.with_name(out.name + ".png")


def run(args) -> int:
    if args.limit < 2 or args.limit > MAX_POINTS:
        raise InputError(f"--limit must be between 2 and {MAX_POINTS:,}")
    out = output_path(args.out)
    with replaced_file(out, "plot file") as tmp:  # checked before the model loads; renamed into place at the end
        count, explained = _plot(args, tmp)
    print(f"wrote {out} ({count} points, PCA explains {100 * explained.sum():.0f}% of the latent variance)")
    return 0


def _plot(args, path: Path):
    import torch

    from motif_screen.cli.generate import default_model_path

    if args.campaign:
        latents, values = _campaign_points(args, args.color_by)
        title = args.title or f"latent map of campaign {args.campaign}"
    else:
        from motif_screen.model.checkpoint import load_autoencoder

        model = load_autoencoder(args.model or default_model_path())
        ids, structures, columns = _structures_and_columns(args.data, args.limit)
        z = model.encode(structures, names=ids)
        with torch.no_grad():
            predictions = {k: m.tolist() for k, (m, _) in model.predict_properties(z).items()}
        values = _colour_values(args.color_by, structures, columns, predictions)
        latents = z.numpy()
        title = args.title or f"latent map: {len(structures)} structures, model {model.model_name}"
    xy, explained = pca_2d(latents)
    draw_map(xy, values, path, args.color_by, title, explained)
    return len(values), explained
