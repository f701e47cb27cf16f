"""Training data sources -> (structures, {target: values}), and the data fingerprint.

Sources (``load_data(spec)`` dispatches on ``spec["source"]``):

- ``csv``: a CDVAE-style CSV (``cif`` column + property columns), e.g. perov-5's ``val.csv``;
- ``files``: a folder, glob or list of CIF / POSCAR / extxyz files, labels from a CSV
  (column ``file`` or ``name`` + property columns) or, for extxyz, from each frame's info;
- ``qm9``: QM9 from ``qm9pack`` via :func:`motif_screen.training.qm9.load_qm9`;
- ``mongodb``: successful :class:`~motif_screen.db.documents.OracleResult` documents (DFT only
  unless ``sources`` says otherwise: ML-potential labels never leak into a DFT training set).
"""

from __future__ import annotations

import glob
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motif_screen import keys
from motif_screen.errors import ConfigError, InputError

log = logging.getLogger(__name__)

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".extxyz", ".xyz", ".json")


@dataclass
class Dataset:
    structures: list
    targets: dict[str, list]  # target -> list of float (NaN = missing)
    names: list[str] = field(default_factory=list)
    description: str = ""

    def __len__(self) -> int:
        return len(self.structures)


def _float_or_nan(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out if np.isfinite(out) else float("nan")


def _require_columns(frame, columns, label):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{label} has no column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}")


def load_csv(path, targets, cif_column: str = "cif", id_column: str | None = "material_id", limit: int | None = None) -> Dataset:
    """CDVAE-style CSV: one CIF string per row plus property columns."""
    import pandas as pd
    from pymatgen.core import Structure

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"data file {path} does not exist")
    frame = pd.read_csv(path)
    _require_columns(frame, [cif_column, *targets], str(path))
    if limit is not None:
        frame = frame.iloc[: int(limit)]
    structures, names = [], []
    for row_number, row in enumerate(frame.itertuples(index=False)):
        record = row._asdict()
        name = str(record.get(id_column)) if id_column and id_column in record else f"{path.name}:{row_number}"
        try:
            structures.append(Structure.from_str(record[cif_column], fmt="cif"))
        except Exception as exc:  # pymatgen raises many types for bad CIFs
            raise InputError(f"row {row_number} ({name}) of {path} holds an unreadable CIF: {type(exc).__name__}") from None
        names.append(name)
    values = {t: [_float_or_nan(v) for v in frame[t].tolist()] for t in targets}
    return Dataset(structures, values, names, f"csv {path} ({len(structures)} structures)")


def _expand_paths(paths) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[Path] = []
    for entry in paths:
        entry = str(Path(entry).expanduser())
        p = Path(entry)
        if p.is_dir():
            found.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in STRUCTURE_SUFFIXES or q.name.startswith(("POSCAR", "CONTCAR"))))
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
            from ase.io import read

            frames = read(str(path), index=":")
            return [(f"{path.name}:{i}" if len(frames) > 1 else path.name, atoms, dict(atoms.info)) for i, atoms in enumerate(frames)]
        from pymatgen.core import Structure

        return [(path.name, Structure.from_file(str(path)), {})]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read structure file {path}: {type(exc).__name__}: {str(exc)[:120]}") from None


def load_files(paths, targets, labels_csv=None) -> Dataset:
    """CIF/POSCAR/extxyz files; labels from ``labels_csv`` (``file``/``name`` column) or extxyz info."""
    labels = None
    if labels_csv is not None:
        import pandas as pd

        labels_path = Path(labels_csv).expanduser()
        if not labels_path.is_file():
            raise InputError(f"labels file {labels_path} does not exist")
        frame = pd.read_csv(labels_path)
        key = "file" if "file" in frame.columns else "name"
        _require_columns(frame, [key, *targets], str(labels_path))
        labels = {str(r[key]): r for r in frame.to_dict("records")}
    structures, names, values = [], [], {t: [] for t in targets}
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


def load_qm9_dataset(targets, n: int | None = None, seed: int = 0, **filters) -> Dataset:
    from motif_screen.training.qm9 import load_qm9

    molecules, values = load_qm9(n=n, seed=seed, targets=tuple(targets), **filters)
    names = [f"qm9:{m.properties.get('qm9_index')}" for m in molecules]
    return Dataset(molecules, {t: [float(v) for v in values[t]] for t in targets}, names, f"QM9 ({len(molecules)} molecules)")


ORACLE_FIELDS = {keys.FORMATION_ENERGY: "formation_energy_per_atom", keys.ENERGY_PER_ATOM: "energy_per_atom",
                 keys.BAND_GAP: "band_gap"}


def load_oracle_results(targets, campaign: str | None = None, sources=keys.DFT_SOURCES) -> Dataset:
    """Successful oracle results (relaxed structure when stored) as a training set; needs db.connect()."""
    from pymatgen.core import Molecule, Structure

    from motif_screen.db.documents import OracleResult

    unknown = [t for t in targets if t not in ORACLE_FIELDS]
    if unknown:
        raise InputError(f"oracle results carry {', '.join(ORACLE_FIELDS)}, not {', '.join(unknown)}")
    query = OracleResult.objects(run_status="successful", source__in=list(sources))
    if campaign:
        query = query.filter(campaign=campaign)
    structures, names, values = [], [], {t: [] for t in targets}
    for result in query:
        data = result.final_structure or result.candidate.structure
        structures.append((Structure if "lattice" in data else Molecule).from_dict(data))
        names.append(f"{result.campaign}:{result.candidate.pk}:{result.source}")
        for t in targets:
            values[t].append(_float_or_nan(getattr(result, ORACLE_FIELDS[t])))
    where = f"campaign {campaign}" if campaign else "all campaigns"
    return Dataset(structures, values, names, f"oracle results ({', '.join(sources)}) of {where}: {len(structures)}")


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
            return load_oracle_results(targets, sources=sources, **spec)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"data source {source!r}: missing or unknown setting ({exc})") from None
    raise ConfigError(f"data source must be one of csv, files, qm9, mongodb; got {source!r}")


def data_fingerprint(structures, targets: dict[str, list]) -> str:
    """sha256 over the structures' canonical fingerprints and the labels (order-sensitive, 16 hex)."""
    from motif_screen.structures.fingerprint import fingerprint

    h = hashlib.sha256()
    for s in structures:
        if hasattr(s, "get_positions") and not hasattr(s, "cart_coords"):  # ASE Atoms
            from pymatgen.io.ase import AseAtomsAdaptor

            s = AseAtomsAdaptor.get_structure(s) if any(s.get_pbc()) else AseAtomsAdaptor.get_molecule(s)
        h.update(fingerprint(s).encode())
    for name in sorted(targets):
        h.update(name.encode())
        h.update(np.round(np.asarray(targets[name], dtype=float), 6).tobytes())
    return h.hexdigest()[:16]
