"""Reading and writing structures: every entry point users give us ends up as pymatgen objects.

Users arrive with CIFs, POSCARs, extxyz trajectories, CDVAE-style CSV splits, folders of those,
ASE ``Atoms`` or MongoDB dicts. One reader turns all of them into ``(id, Structure|Molecule)``
pairs, and every failure names the file (and CSV row) so the user can fix that one input.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from motif_screen.errors import InputError

__all__ = ["read_structures", "structure_from_any", "write_cifs", "SUPPORTED_SUFFIXES"]

CIF_SUFFIXES = (".cif", ".mcif")
VASP_SUFFIXES = (".vasp", ".poscar", ".contcar")
VASP_NAMES = ("POSCAR", "CONTCAR")
XYZ_SUFFIXES = (".xyz", ".extxyz")
CSV_SUFFIXES = (".csv",)
JSON_SUFFIXES = (".json",)
SUPPORTED_SUFFIXES = CIF_SUFFIXES + VASP_SUFFIXES + XYZ_SUFFIXES + CSV_SUFFIXES + JSON_SUFFIXES
CSV_STRUCTURE_COLUMN = "cif"
CSV_ID_COLUMN = "material_id"


def _is_vasp_name(path: Path) -> bool:
    name = path.name.upper()
    return path.suffix.lower() in VASP_SUFFIXES or any(name.startswith(n) for n in VASP_NAMES)


def _is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES or _is_vasp_name(path)


def _check_species(structure, where: str):
    """pymatgen silently maps unknown symbols to DummySpecies; a materials screen must not."""
    from pymatgen.core import Element

    if len(structure) == 0:
        raise InputError(f"{where} contains no atoms.")
    for site in structure:
        for species in site.species:
            if not isinstance(getattr(species, "element", species), Element):
                raise InputError(f"{where} contains an unknown element {species!s}.")
    if not structure.is_ordered:
        raise InputError(f"{where} is a disordered (partial occupancy) structure; only ordered structures are supported.")
    return structure


def structure_from_any(obj, where: str = "input"):
    """A pymatgen ``Structure``/``Molecule`` from pymatgen objects, ASE ``Atoms`` or an ``as_dict()`` dict."""
    from pymatgen.core import IMolecule, IStructure, Molecule, Structure

    if isinstance(obj, (Structure, Molecule)):
        return _check_species(obj, where)
    if isinstance(obj, IStructure):
        return _check_species(Structure.from_sites(obj.sites), where)
    if isinstance(obj, IMolecule):
        return _check_species(Molecule.from_sites(obj.sites), where)
    if isinstance(obj, dict):
        try:
            cls = Structure if "lattice" in obj else Molecule
            return _check_species(cls.from_dict(obj), where)
        except InputError:
            raise
        except Exception as exc:  # pymatgen raises KeyError/ValueError/TypeError on bad dicts
            raise InputError(f"{where} is not a valid pymatgen structure dict ({type(exc).__name__}: {exc}).") from exc
    try:
        from ase import Atoms
    except ImportError:  # pragma: no cover - ase is a dependency
        Atoms = None
    if Atoms is not None and isinstance(obj, Atoms):
        from pymatgen.io.ase import AseAtomsAdaptor

        if len(obj) == 0:
            raise InputError(f"{where} contains no atoms.")
        try:
            if obj.pbc.any():
                return _check_species(AseAtomsAdaptor.get_structure(obj), where)
            return _check_species(AseAtomsAdaptor.get_molecule(obj), where)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{where} cannot be converted from ASE Atoms ({exc}).") from exc
    raise InputError(f"{where} has unsupported type {type(obj).__name__}; give a pymatgen Structure/Molecule, ASE Atoms or a dict.")


def _read_cif(path: Path) -> list[tuple[str, object]]:
    import warnings

    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = CifParser(str(path))
        structures = parser.parse_structures(primitive=False)
    if len(structures) == 1:
        return [(path.stem, structures[0])]
    return [(f"{path.stem}:{i}", s) for i, s in enumerate(structures)]


def _read_poscar(path: Path) -> list[tuple[str, object]]:
    from pymatgen.core import Structure

    return [(path.stem if path.suffix else path.name, Structure.from_file(str(path)))]


def _read_xyz(path: Path) -> list[tuple[str, object]]:
    import ase.io

    frames = ase.io.read(str(path), index=":")
    out = []
    for i, atoms in enumerate(frames):
        ident = path.stem if len(frames) == 1 else f"{path.stem}:{i}"
        out.append((ident, structure_from_any(atoms, f"{path} frame {i}")))
    return out


def _read_json(path: Path) -> list[tuple[str, object]]:
    import json

    data = json.loads(path.read_text())
    if isinstance(data, dict):
        return [(path.stem, structure_from_any(data, str(path)))]
    if isinstance(data, list):
        return [(f"{path.stem}:{i}", structure_from_any(d, f"{path} entry {i}")) for i, d in enumerate(data)]
    raise InputError(f"{path} holds neither a structure dict nor a list of them.")


def _read_csv(path: Path) -> list[tuple[str, object]]:
    """CDVAE's split format: one CIF string per row in column ``cif``; ids from ``material_id``."""
    import pandas as pd
    from pymatgen.core import Structure

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path} is empty.") from exc
    if CSV_STRUCTURE_COLUMN not in frame.columns:
        raise InputError(f"{path} has no '{CSV_STRUCTURE_COLUMN}' column (columns: {', '.join(map(str, frame.columns))}).")
    has_id = CSV_ID_COLUMN in frame.columns
    out = []
    for row, (ident, text) in enumerate(zip(frame[CSV_ID_COLUMN] if has_id else frame.index, frame[CSV_STRUCTURE_COLUMN])):
        where = f"{path} row {row + 2}"  # 1-based, after the header line: what an editor shows
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where} has an empty '{CSV_STRUCTURE_COLUMN}' cell.")
        try:
            structure = Structure.from_str(text, fmt="cif")
        except Exception as exc:
            raise InputError(f"{where} is not a readable CIF ({type(exc).__name__}: {exc}).") from exc
        out.append((str(ident), _check_species(structure, where)))
    return out


def _read_file(path: Path) -> list[tuple[str, object]]:
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty.")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _read_csv(path)  # reports its own row numbers
    try:
        if suffix in CIF_SUFFIXES:
            pairs = _read_cif(path)
        elif suffix in XYZ_SUFFIXES:
            pairs = _read_xyz(path)
        elif suffix in JSON_SUFFIXES:
            pairs = _read_json(path)
        elif _is_vasp_name(path):
            pairs = _read_poscar(path)
        else:
            raise InputError(f"{path} has an unsupported file type; supported: CIF, POSCAR/CONTCAR, extxyz, CSV, JSON.")
    except InputError:
        raise
    except Exception as exc:  # parsers raise anything from ValueError to IndexError on broken files
        raise InputError(f"{path} cannot be read as a structure ({type(exc).__name__}: {exc}).") from exc
    if not pairs:
        raise InputError(f"{path} contains no structures.")
    return [(ident, _check_species(s, str(path))) for ident, s in pairs]


def _read_folder(folder: Path) -> list[tuple[str, object]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _is_supported(p))
    if not files:
        raise InputError(f"{folder} contains no structure files (CIF, POSCAR/CONTCAR, extxyz, CSV, JSON).")
    out = []
    for path in files:
        out.extend(_read_file(path))
    return out


def read_structures(source) -> list[tuple[str, object]]:
    """All structures in a file, a folder of files, or a list of paths, as ``(id, structure)`` pairs.

    ids are file stems (``stem:i`` for multi-structure files) or the CSV ``material_id``.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return _read_folder(path)
        return _read_file(path)
    if isinstance(source, Iterable):
        out = []
        for item in source:
            if not isinstance(item, (str, os.PathLike)):
                raise InputError(f"read_structures expects paths, got {type(item).__name__}.")
            out.extend(read_structures(item))
        return out
    raise InputError(f"read_structures expects a path or a list of paths, got {type(source).__name__}.")


def write_cifs(structures: Sequence, folder, names: Sequence[str] | None = None) -> list[Path]:
    """Write one CIF per structure (items may be structures or ``(name, structure)`` pairs).

    Each file is written to a temporary name in the same folder and renamed, so a reader never
    sees half a CIF and an interrupted run leaves no broken files.
    """
    from pymatgen.io.cif import CifWriter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i, item in enumerate(structures):
        if isinstance(item, tuple) and len(item) == 2:
            pairs.append((str(item[0]), item[1]))
        else:
            pairs.append((names[i] if names is not None else f"{i:06d}", item))
    if len({name for name, _ in pairs}) != len(pairs):
        raise InputError("write_cifs was given duplicate names; each structure needs its own file name.")
    written = []
    for name, structure in pairs:
        if not hasattr(structure, "lattice"):
            raise InputError(f"{name} is a molecule; CIF needs a periodic structure.")
        safe = "".join(c if c.isalnum() or c in "-_.:" else "_" for c in name).replace(":", "_")
        target = folder / f"{safe}.cif"
        fd, tmp = tempfile.mkstemp(prefix=f".{safe}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(str(CifWriter(structure)))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written
