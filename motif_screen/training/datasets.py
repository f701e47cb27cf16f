"""Training data sources -> :class:`Dataset` (structures, {target: values}, names).

Sources (``load_data(spec)`` dispatches on ``spec["source"]``):

- ``csv``: a CDVAE-style CSV (``cif`` column + property columns), e.g. perov-5's ``val.csv``,
  read by :func:`load_csv` — the one reader of such files for every training task;
- ``files``: a folder, glob or list of CIF / POSCAR / extxyz files, labels from a CSV
  (column ``file`` or ``name`` + property columns) or, for extxyz, from each frame's info;
- ``qm9``: QM9 from ``qm9pack`` via :func:`motif_screen.training.qm9.load_qm9`;
- ``mongodb``: successful :class:`~motif_screen.db.documents.OracleResult` documents (DFT only
  unless ``sources`` says otherwise: ML-potential labels never leak into a DFT training set);
- ``labels``: a label file of ``motif-screen label`` (:mod:`motif_screen.training.labels`): the
  oracle's values of each structure, failures left out.

Labels of different oracle sources (CHGNet and DFT) are refused in one data set unless the spec
says ``allow_mixed_sources: true``.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import glob
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from ase.io import read as ase_read
from pymatgen.core import Molecule, Structure

from motif_screen import keys
from motif_screen.db import queries
from motif_screen.errors import ConfigError, InputError
from motif_screen.structures import io
from motif_screen.training import labels as label_files
from motif_screen.training.qm9 import load_qm9
from motif_screen.training.usable import skip_summary

__all__ = [
    "Dataset",
    "check_sources",
    "load_csv",
    "load_data",
    "load_files",
    "load_labels",
    "load_oracle_results",
    "load_qm9_dataset",
    "read_table",
]

log = logging.getLogger(__name__)

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".extxyz", ".xyz", ".json")
FIRST_DATA_ROW = 2  # the header is row 1


@dataclass
class Dataset:
    structures: list
    targets: dict[str, list]  # target -> list of float (NaN = missing)
    names: list[str] = field(default_factory=list)
    description: str = ""
    skipped: list[str] = field(default_factory=list)  # "<row>: <reason>" of each input left out
    sources: list[str] = field(default_factory=list)  # the oracle source of each row, where known

    def __len__(self) -> int:
        return len(self.structures)


# --- reading a CSV file ---------------------------------------------------------------------------
def read_table(path) -> pd.DataFrame:
    """A CSV file as a DataFrame, read by the project's one checked reader
    (:func:`motif_screen.structures.io.read_table`: encodings, size limit, special files)."""
    path = Path(path).expanduser()
    if not path.is_file() and not path.exists():
        raise InputError(f"data file {path} does not exist")
    return io.read_table(path)


def _require_columns(frame: pd.DataFrame, columns, label) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{label} has no column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}")


def _as_number(value) -> float | None:
    """The number a cell holds (NaN for an empty cell), or None for text that is not a number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, str) and not value.strip():
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else math.nan


def numeric_column(frame: pd.DataFrame, column: str, label) -> list[float]:
    """A label column as floats, NaN where a cell is empty. A column without any number, or with
    cells that hold text other than a number, is refused with the rows at fault."""
    values, bad = [], []
    for row, value in enumerate(frame[column].tolist(), start=FIRST_DATA_ROW):
        number = _as_number(value)
        if number is None:
            bad.append(f"row {row} ({str(value)[:20]!r})")
            number = math.nan
        values.append(number)
    if not any(math.isfinite(v) for v in values):
        raise InputError(f"column {column} of {label} has no numeric value: nothing to train on")
    if bad:
        raise InputError(
            f"column {column} of {label} holds non-numeric values in {skip_summary(bad, sep=', ')}; "
            "correct them or leave those cells empty (an empty cell is a missing label)"
        )
    return values


def _cif_structure(cell) -> Structure:
    """The structure a ``cif`` cell holds; ValueError saying what is wrong with the cell."""
    text = cell.strip() if isinstance(cell, str) else ""
    if not text and (cell is None or isinstance(cell, str) or (isinstance(cell, float) and math.isnan(cell))):
        raise ValueError("the cif cell is empty")
    if "data_" not in text:
        raise ValueError(f"the cif cell is not a CIF ({str(cell).strip()[:20]!r} has no data_ block)")
    try:
        blocks = io.structures_from_cif(text, "the cif cell")
    except InputError as exc:  # the row is skipped with the reason
        raise ValueError(str(exc).removeprefix("the cif cell ").rstrip(".")) from None
    return blocks[0][1]


def load_csv(
    path, targets, cif_column: str = "cif", id_column: str | None = "material_id", limit: int | None = None
) -> Dataset:
    """A CDVAE-style CSV: one CIF per row in ``cif_column`` plus label columns ``targets``.

    Rows whose CIF cannot be read are skipped, each with its reason (logged, and kept in
    ``Dataset.skipped``); when none is readable the error names the first few and why. Label
    columns are checked by :func:`numeric_column`."""
    path = Path(path).expanduser()
    frame = read_table(path)
    _require_columns(frame, [cif_column, *targets], str(path))
    if limit is not None:
        frame = frame.iloc[: int(limit)]
    values = {t: numeric_column(frame, t, path) for t in targets}
    has_id = bool(id_column) and id_column in frame.columns
    ids = frame[id_column].tolist() if has_id else [None] * len(frame)
    structures, names, kept, skipped = [], [], [], []
    for i, (ident, cell) in enumerate(zip(ids, frame[cif_column].tolist())):
        name = str(ident) if has_id else f"{path.name}:{i}"
        try:
            structures.append(_cif_structure(cell))
        except ValueError as exc:
            skipped.append(f"row {i + FIRST_DATA_ROW}{f' ({ident})' if has_id else ''}: {exc}")
            continue
        names.append(name)
        kept.append(i)
    if not structures:
        raise InputError(
            f"no usable structures in {path}: all {len(frame)} rows failed: {skip_summary(skipped)}"
            if skipped
            else f"no usable structures in {path}: it has no data rows"
        )
    if skipped:
        log.warning("%s: skipped %d of %d rows: %s", path, len(skipped), len(frame), skip_summary(skipped))
    values = {t: [column[i] for i in kept] for t, column in values.items()}
    description = f"csv {path} ({len(structures)} structures{f', {len(skipped)} rows skipped' if skipped else ''})"
    return Dataset(structures, values, names, description, skipped)


# --- structure files ------------------------------------------------------------------------------
def _expand_paths(paths) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[Path] = []
    for entry in paths:
        entry = str(Path(entry).expanduser())
        p = Path(entry)
        if p.is_dir():
            found.extend(
                sorted(
                    q
                    for q in p.iterdir()
                    if q.suffix.lower() in STRUCTURE_SUFFIXES or q.name.startswith(("POSCAR", "CONTCAR"))
                )
            )
        elif any(ch in entry for ch in "*?["):
            found.extend(Path(q) for q in sorted(glob.glob(entry)))
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(f"structure path {entry} does not exist")
    if not found:
        raise InputError(f"no structure files found in {paths}")
    return found


def _read_file(path: Path):
    """A list of (name, structure, info) from one file (extxyz may hold many frames)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".extxyz", ".xyz"):
            frames = ase_read(str(path), index=":")
            return [
                (f"{path.name}:{i}" if len(frames) > 1 else path.name, atoms, dict(atoms.info))
                for i, atoms in enumerate(frames)
            ]
        return [(path.name, Structure.from_file(str(path)), {})]
    except Exception as exc:  # pymatgen and ASE raise many types for broken files
        raise InputError(f"cannot read structure file {path}: {type(exc).__name__}: {str(exc)[:120]}") from None


def _float_or_nan(value) -> float:
    number = _as_number(value)
    return math.nan if number is None else number


def load_files(paths, targets, labels_csv=None) -> Dataset:
    """CIF/POSCAR/extxyz files; labels from ``labels_csv`` (``file``/``name`` column) or extxyz info."""
    labels = None
    if labels_csv is not None:
        frame = read_table(labels_csv)
        key = "file" if "file" in frame.columns else "name"
        _require_columns(frame, [key, *targets], str(labels_csv))
        columns = {t: numeric_column(frame, t, labels_csv) for t in targets}
        labels = {str(name): {t: columns[t][row] for t in targets} for row, name in enumerate(frame[key].tolist())}
    structures, names = [], []
    values: dict[str, list[float]] = {t: [] for t in targets}
    for path in _expand_paths(paths):
        for name, structure, info in _read_file(path):
            if labels is not None:
                row = labels.get(name) or labels.get(Path(name.split(":")[0]).stem) or labels.get(name.split(":")[0])
                if row is None:
                    log.warning("no labels for %s in %s; its targets are missing", name, labels_csv)
                    row = {}
            else:
                row = info
            structures.append(structure)
            names.append(name)
            for t in targets:
                values[t].append(_float_or_nan(row.get(t)))
    return Dataset(structures, values, names, f"files {paths} ({len(structures)} structures)")


# --- QM9 and oracle results -----------------------------------------------------------------------
def load_qm9_dataset(targets, n: int | None = None, seed: int = 0, **filters) -> Dataset:
    molecules, values = load_qm9(n=n, seed=seed, targets=tuple(targets), **filters)
    names = [f"qm9:{m.properties.get('qm9_index')}" for m in molecules]
    return Dataset(
        molecules, {t: [float(v) for v in values[t]] for t in targets}, names, f"QM9 ({len(molecules)} molecules)"
    )


ORACLE_FIELDS = {
    keys.FORMATION_ENERGY: "formation_energy_per_atom",
    keys.ENERGY_PER_ATOM: "energy_per_atom",
    keys.BAND_GAP: "band_gap",
}


def load_oracle_results(targets, campaign: str | None = None, sources=keys.DFT_SOURCES) -> Dataset:
    """Successful oracle results (relaxed structure when stored) as a training set; needs db.connect()."""
    unknown = [t for t in targets if t not in ORACLE_FIELDS]
    if unknown:
        raise InputError(f"oracle results carry {', '.join(ORACLE_FIELDS)}, not {', '.join(unknown)}")
    structures, names, found = [], [], []
    values: dict[str, list[float]] = {t: [] for t in targets}
    for result in queries.successful_results(sources, campaign):
        data = result.final_structure or result.candidate.structure
        structures.append((Structure if "lattice" in data else Molecule).from_dict(data))
        names.append(f"{result.campaign}:{result.candidate.pk}:{result.source}")
        found.append(str(result.source))
        for t in targets:
            values[t].append(_float_or_nan(getattr(result, ORACLE_FIELDS[t])))
    where = f"campaign {campaign}" if campaign else "all campaigns"
    description = f"oracle results ({', '.join(sources)}) of {where}: {len(structures)}"
    return Dataset(structures, values, names, description, sources=found)


LABEL_STRUCTURES = ("input", "relaxed")


def load_labels(path, targets, structure: str = "input", allow_mixed_sources: bool = False) -> Dataset:
    """A label file of ``motif-screen label``: one row per labelled structure, failures left out.

    ``structure``: ``input`` (the structure as it was labelled, what screening sees: the default) or
    ``relaxed`` (the oracle's relaxed cell). ``targets`` are record fields (``formation_energy_per_atom``,
    ``energy_per_atom``)."""
    if structure not in LABEL_STRUCTURES:
        raise ConfigError(f"labels: structure must be one of {', '.join(LABEL_STRUCTURES)}, got {structure!r}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"label file {path} does not exist")
    records = label_files.read_labels(path)
    rows = list(label_files.training_rows(records, allow_mixed_sources=allow_mixed_sources))
    if not rows:
        raise InputError(f"{path} holds no successful label ({len(records)} records, all failed or without a value)")
    field_name = "structure" if structure == "input" else "relaxed_structure"
    used = {id(r) for r in rows}
    values = {t: [_float_or_nan(r.get(t)) for r in rows] for t in targets}
    structures = [Structure.from_dict(r[field_name]) for r in rows]
    failed = len(records) - len(rows)
    description = f"labels {path} ({len(rows)} of {len(records)} records; {failed} failed, fused or without a value)"
    return Dataset(
        structures,
        values,
        [str(r["id"]) for r in rows],
        description,
        [f"{r['id']}: {label_files.failure(r)}" for r in records if id(r) not in used],
        sources=[str(r["source"]) for r in rows],
    )


def check_sources(dataset_sources: list[str], what: str, allow_mixed_sources: bool = False) -> None:
    """ConfigError when labels of more than one oracle source would train one model (unless allowed)."""
    distinct = sorted(set(dataset_sources))
    if len(distinct) > 1 and not allow_mixed_sources:
        raise ConfigError(
            f"{what} mixes labels of {', '.join(distinct)}: CHGNet values are not DFT values; train on one "
            "source, or set allow_mixed_sources: true if you mean it"
        )


def load_data(spec: dict, targets, base_dir=None) -> Dataset:
    """The dataset named by a config's ``data:`` mapping (relative paths resolved from ``base_dir``)."""
    spec = dict(spec or {})
    source = spec.pop("source", None)
    base = Path(base_dir) if base_dir else Path.cwd()

    def resolve(p):
        p = Path(str(p)).expanduser()
        return p if p.is_absolute() else base / p

    try:
        if source == "csv":
            return load_csv(resolve(spec.pop("path")), targets, **spec)
        if source == "files":
            paths = spec.pop("paths", None) or spec.pop("path")
            paths = [resolve(p) for p in ([paths] if isinstance(paths, str) else paths)]
            labels = spec.pop("labels", None)
            return load_files(paths, targets, resolve(labels) if labels else None, **spec)
        if source == "qm9":
            return load_qm9_dataset(targets, **spec)
        if source == "mongodb":
            spec.pop("db_file", None)
            spec.pop("uri", None)
            sources = tuple(spec.pop("sources", keys.DFT_SOURCES))
            allow_mixed = bool(spec.pop("allow_mixed_sources", False))
            check_sources(list(sources), f"data source mongodb (sources {', '.join(sources)})", allow_mixed)
            return load_oracle_results(targets, sources=sources, **spec)
        if source == "labels":
            return load_labels(resolve(spec.pop("path")), targets, **spec)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"data source {source!r}: missing or unknown setting ({exc})") from None
    raise ConfigError(f"data source must be one of csv, files, qm9, mongodb, labels; got {source!r}")
