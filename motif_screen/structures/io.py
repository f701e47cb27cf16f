"""Reading and writing structures: every entry point users give us ends up as pymatgen objects.

Users arrive with CIFs, POSCARs, extxyz trajectories, CDVAE-style CSV splits, folders of those,
ASE ``Atoms`` or MongoDB dicts. One reader turns all of them into ``(id, Structure|Molecule)``
pairs, and every failure names the file (and CSV row) so the user can fix that one input.

Reading is bounded (:mod:`motif_screen.limits`): a file is checked to be a regular file no
larger than ``MAX_STRUCTURE_FILE_BYTES`` before it is opened, its text decoded once (UTF-8 with
or without a byte-order mark; UTF-16/32 with one), and the atom count it declares (POSCAR
counts, extxyz frame headers, CIF atom sites × symmetry operations, JSON sites) is checked
before the parser builds anything. Every structure read is inside the geometry limits.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import stat
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from motif_screen.errors import InputError
from motif_screen.limits import (
    MAX_ABS_FRACTIONAL_COORDINATE,
    MAX_ATOMS_PER_STRUCTURE,
    MAX_CIF_EXPANDED_SITES,
    MAX_LATTICE_LENGTH,
    check_atom_count,
    check_file_size,
    check_geometry,
)
from motif_screen.messages import shorten
from motif_screen.safe_paths import MAX_NAME_BYTES, OutputFolder, file_name, kind_of

if TYPE_CHECKING:
    from pymatgen.core import Molecule, Structure

__all__ = [
    "cif_text",
    "read_structures",
    "read_text",
    "read_table",
    "structure_from_any",
    "structures_from_cif",
    "write_cifs",
    "SUPPORTED_SUFFIXES",
]

CIF_SUFFIXES = (".cif", ".mcif")
VASP_SUFFIXES = (".vasp", ".poscar", ".contcar")
VASP_NAMES = ("POSCAR", "CONTCAR")
XYZ_SUFFIXES = (".xyz", ".extxyz")
CSV_SUFFIXES = (".csv",)
JSON_SUFFIXES = (".json",)
SUPPORTED_SUFFIXES = CIF_SUFFIXES + VASP_SUFFIXES + XYZ_SUFFIXES + CSV_SUFFIXES + JSON_SUFFIXES
CSV_STRUCTURE_COLUMN = "cif"
CSV_ID_COLUMN = "material_id"

# longest first: the UTF-32 LE mark starts with the UTF-16 LE one
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_CIF_NUMBER = re.compile(r"^\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)")
_MAX_SYMMETRY_OPERATIONS = 192  # Fm-3m, Im-3m, ...: no space group has more


def _is_vasp_name(path: Path) -> bool:
    name = path.name.upper()
    return path.suffix.lower() in VASP_SUFFIXES or any(name.startswith(n) for n in VASP_NAMES)


def _is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES or _is_vasp_name(path)


# --- text ---------------------------------------------------------------------------------------
def _decode(data: bytes, where: str) -> str:
    for mark, codec, name in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{where} starts with a {name} byte-order mark but is not valid {name} ({exc.reason})."
                ) from None
    if b"\x00" in data:
        raise InputError(
            f"{where} contains NUL bytes: it is binary, or UTF-16 without a byte-order mark; save it as UTF-8 text."
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # legacy CIFs (author names); the parser judges the content


def _regular_file(path: Path) -> os.stat_result:
    """``os.stat`` of ``path``, or one InputError when it is missing or not a regular file
    (a FIFO would block the reader, a device never ends)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist.") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path} is {kind_of(info.st_mode)}, not a regular file.")
    return info


def read_text(path) -> str:
    """The text of a user's file, refused with one clear InputError when it is missing, not a
    regular file, empty, larger than ``MAX_STRUCTURE_FILE_BYTES`` or not text. A UTF-8
    byte-order mark is dropped; UTF-16 and UTF-32 files with a byte-order mark are decoded."""
    path = Path(path)
    info = _regular_file(path)
    check_file_size(info.st_size, str(path))
    try:
        with open(path, "rb") as handle:
            data = handle.read(info.st_size + 1)  # one byte more: a file that grew is noticed
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}.") from None
    check_file_size(len(data), str(path))
    if not data.strip():
        raise InputError(f"{path} is empty.")
    return _decode(data, str(path))


def read_table(path):
    """A CSV file as a pandas DataFrame, read with :func:`read_text`'s checks (encodings, size,
    special files) and one InputError for a file pandas cannot split into rows."""
    import pandas as pd

    text = read_text(path)
    try:
        return pd.read_csv(io.StringIO(text))
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} is empty.") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path} is not a readable CSV file ({shorten(exc)}).") from None


# --- checks shared by every reader -------------------------------------------------------------
def _check_structure(structure, where: str):
    """Limits, known elements, ordered sites: what every structure read must satisfy.
    (pymatgen silently maps unknown symbols to DummySpecies; a materials screen must not.)"""
    from pymatgen.core import Element

    if len(structure) == 0:
        raise InputError(f"{where} contains no atoms.")
    check_geometry(structure, where)
    for site in structure:
        for species in site.species:
            if not isinstance(getattr(species, "element", species), Element):
                raise InputError(f"{where} contains an unknown element {shorten(species)}.")
    if not structure.is_ordered:
        raise InputError(
            f"{where} is a disordered (partial occupancy) structure; only ordered structures are supported."
        )
    return structure


def structure_from_any(obj, where: str = "input"):
    """A pymatgen ``Structure``/``Molecule`` from pymatgen objects, ASE ``Atoms`` or an ``as_dict()`` dict."""
    from pymatgen.core import IMolecule, IStructure, Molecule, Structure

    if obj is None or (isinstance(obj, dict) and not obj):  # a document's missing structure field reads as {}
        raise InputError(f"{where} has no structure.")
    if isinstance(obj, (Structure, Molecule)):
        return _check_structure(obj, where)
    if isinstance(obj, IStructure):
        return _check_structure(Structure.from_sites(obj.sites), where)
    if isinstance(obj, IMolecule):
        return _check_structure(Molecule.from_sites(obj.sites), where)
    if isinstance(obj, dict):
        sites = obj.get("sites")
        if isinstance(sites, list):
            check_atom_count(len(sites), where)
        try:
            cls = Structure if "lattice" in obj else Molecule
            structure = cls.from_dict(obj)
        except Exception as exc:  # pymatgen raises KeyError/ValueError/TypeError on bad dicts
            raise InputError(
                f"{where} is not a valid pymatgen structure dict ({type(exc).__name__}: {shorten(exc)})."
            ) from None
        return _check_structure(structure, where)
    if _is_ase_atoms(obj):
        from pymatgen.io.ase import AseAtomsAdaptor

        if len(obj) == 0:
            raise InputError(f"{where} contains no atoms.")
        check_atom_count(len(obj), where)
        try:
            structure = AseAtomsAdaptor.get_structure(obj) if obj.pbc.any() else AseAtomsAdaptor.get_molecule(obj)
        except Exception as exc:
            raise InputError(f"{where} cannot be converted from ASE Atoms ({shorten(exc)}).") from None
        return _check_structure(structure, where)
    raise InputError(
        f"{where} has unsupported type {type(obj).__name__}; give a pymatgen Structure/Molecule, ASE Atoms or a dict."
    )


def _is_ase_atoms(obj) -> bool:
    try:
        from ase import Atoms
    except ImportError:  # pragma: no cover - ase is a dependency
        return False
    return isinstance(obj, Atoms)


# --- CIF ----------------------------------------------------------------------------------------
def _cif_rows(value) -> int:
    return len(value) if isinstance(value, list) else 1


def _cif_number(value) -> float | None:
    match = _CIF_NUMBER.match(str(value))  # "3.905(2)": the standard uncertainty is dropped
    return float(match.group(1)) if match else None


def _symmetry_operations(data: dict) -> int:
    """How many symmetry operations pymatgen will apply to a CIF block's atom sites."""
    for key, value in data.items():
        if key.lower().replace(".", "_").endswith(("_pos_as_xyz", "_operation_xyz")):
            return _cif_rows(value)
    from pymatgen.symmetry.groups import SpaceGroup

    for key, value in data.items():
        lowered = key.lower().replace(".", "_")
        try:
            if lowered.endswith(("int_tables_number", "_it_number")):
                number = _cif_number(value)
                if number is None:  # not a number: this key says nothing
                    continue
                return len(SpaceGroup.from_int_number(int(number)).symmetry_ops)
            if "name_h-m" in lowered:
                return len(SpaceGroup(str(value).strip()).symmetry_ops)
        except Exception:  # a symbol pymatgen does not know: assume the most operations
            continue
    return (
        1 if not any("space_group" in k.lower() or "symmetry" in k.lower() for k in data) else _MAX_SYMMETRY_OPERATIONS
    )


def _check_cif_block(name: str, data: dict, where: str) -> None:
    """Cell parameters and the atom count a CIF block expands to, before pymatgen builds it."""
    for axis in "abc":
        value = data.get(f"_cell_length_{axis}")
        length = _cif_number(value) if value is not None else None
        if length is not None and not 0 < length <= MAX_LATTICE_LENGTH:
            raise InputError(
                f"{where} (block {shorten(name, 40)}): _cell_length_{axis} is {shorten(value, 40)}; "
                f"cell lengths must be above 0 and at most {MAX_LATTICE_LENGTH:,.0f} Å."
            )
    for angle in ("alpha", "beta", "gamma"):
        value = data.get(f"_cell_angle_{angle}")
        degrees = _cif_number(value) if value is not None else None
        if degrees is not None and not 0 < degrees < 180:
            raise InputError(
                f"{where} (block {shorten(name, 40)}): _cell_angle_{angle} is {shorten(value, 40)}; "
                "cell angles must be between 0 and 180 degrees."
            )
    rows = max(
        (
            _cif_rows(v)
            for k, v in data.items()
            if k.lower().startswith("_atom_site_") and not k.lower().startswith("_atom_site_aniso")
        ),
        default=0,
    )
    check_atom_count(rows, f"{where} (block {shorten(name, 40)})")
    for axis in "xyz":  # pymatgen wraps 1e20 to 0 without a word: a coordinate that size is garbage
        column = data.get(f"_atom_site_fract_{axis}")
        for row, value in enumerate(column if isinstance(column, list) else [column] if column else []):
            number = _cif_number(value)
            if number is not None and not abs(number) <= MAX_ABS_FRACTIONAL_COORDINATE:
                raise InputError(
                    f"{where} (block {shorten(name, 40)}): atom site {row + 1} has _atom_site_fract_{axis} "
                    f"{shorten(value, 40)}, outside ±{MAX_ABS_FRACTIONAL_COORDINATE:,.0f}."
                )
    operations = _symmetry_operations(data) if rows else 1
    if rows * operations > MAX_CIF_EXPANDED_SITES:
        raise InputError(
            f"{where} (block {shorten(name, 40)}) has {rows:,} atom sites and {operations} symmetry operations, "
            f"which can expand to {rows * operations:,} atoms; at most {MAX_CIF_EXPANDED_SITES:,} are read "
            f"(a structure may have {MAX_ATOMS_PER_STRUCTURE:,} atoms)."
        )


def structures_from_cif(text: str, where: str) -> list[tuple[str, Structure]]:
    """``(block name, Structure)`` for every block of a CIF text, within the limits; the cell and
    the declared atom sites are checked before pymatgen expands the symmetry."""
    from pymatgen.io.cif import CifFile, CifParser

    text = text.lstrip("\ufeff")
    try:
        blocks = CifFile.from_str(text).data
    except Exception as exc:
        raise InputError(f"{where} is not a readable CIF ({type(exc).__name__}: {shorten(exc)}).") from None
    if not blocks:
        raise InputError(f"{where} is not a CIF: it has no data_ block.")
    for name, block in blocks.items():
        _check_cif_block(name, block.data, where)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser.from_str(text)
            structures = parser.parse_structures(primitive=False)
        except Exception as exc:  # pymatgen raises ValueError, KeyError, IndexError... on broken CIFs
            why = next((str(w.message) for w in caught if "structure" in str(w.message).lower()), "")
            detail = f"{type(exc).__name__}: {exc}" + (f"; {why}" if why else "")
            raise InputError(f"{where} cannot be read as a structure ({shorten(detail)}).") from None
    names = list(blocks)
    return [(names[i] if i < len(names) else str(i), _check_structure(s, where)) for i, s in enumerate(structures)]


def _read_cif(path: Path, text: str) -> list[tuple[str, Structure | Molecule]]:
    structures = [s for _, s in structures_from_cif(text, str(path))]
    if len(structures) == 1:
        return [(path.stem, structures[0])]
    return [(f"{path.stem}:{i}", s) for i, s in enumerate(structures)]


# --- POSCAR, extxyz, JSON, CSV -------------------------------------------------------------------
def _declared_poscar_atoms(lines: list[str]) -> int | None:
    """The atom count of a POSCAR's counts line (line 6 in VASP 4, line 7 after the symbols)."""
    for index in (5, 6):
        tokens = lines[index].split() if index < len(lines) else []
        if tokens and all(t.isdigit() for t in tokens):
            return sum(int(t) for t in tokens)
    return None


def _read_poscar(path: Path, text: str) -> list[tuple[str, Structure | Molecule]]:
    from pymatgen.io.vasp import Poscar

    lines = text.split("\n", 7)[:7]
    declared = _declared_poscar_atoms(lines)
    if declared is not None:
        check_atom_count(declared, str(path))
    ident = path.stem if path.suffix else path.name
    if declared is not None and _declared_poscar_atoms(lines[:6]) is not None:
        # VASP 4: no element line; pymatgen takes the elements from a POTCAR beside the file
        poscar = Poscar.from_file(str(path))
    else:
        poscar = Poscar.from_str(text)
    return [(ident, _check_structure(poscar.structure, str(path)))]


def _check_xyz_frames(text: str, where: str) -> None:
    """Every frame header's atom count, walking from header to header without parsing atoms."""
    lines = text.splitlines()
    index, frame = 0, 0
    while index < len(lines):
        head = lines[index].strip()
        if not head:
            index += 1
            continue
        if not head.isdigit():
            return  # not a header: the parser reports the format error
        count = int(head)
        check_atom_count(count, f"{where} frame {frame}")
        index += count + 2
        frame += 1


def _read_xyz(path: Path, text: str) -> list[tuple[str, Structure | Molecule]]:
    import ase.io

    _check_xyz_frames(text, str(path))
    frames = ase.io.read(io.StringIO(text), index=":", format="extxyz")
    out = []
    for i, atoms in enumerate(frames):
        ident = path.stem if len(frames) == 1 else f"{path.stem}:{i}"
        out.append((ident, structure_from_any(atoms, f"{path} frame {i}")))
    return out


def _read_json(path: Path, text: str) -> list[tuple[str, Structure | Molecule]]:
    import json

    data = json.loads(text)
    if isinstance(data, dict):
        return [(path.stem, structure_from_any(data, str(path)))]
    if isinstance(data, list):
        return [(f"{path.stem}:{i}", structure_from_any(d, f"{path} entry {i}")) for i, d in enumerate(data)]
    raise InputError(f"{path} holds neither a structure dict nor a list of them.")


def _read_csv(path: Path) -> list[tuple[str, Structure | Molecule]]:
    """CDVAE's split format: one CIF string per row in column ``cif``; ids from ``material_id``."""
    frame = read_table(path)
    if CSV_STRUCTURE_COLUMN not in frame.columns:
        columns = shorten(", ".join(map(str, frame.columns)))
        raise InputError(f"{path} has no '{CSV_STRUCTURE_COLUMN}' column (columns: {columns}).")
    has_id = CSV_ID_COLUMN in frame.columns
    out: list[tuple[str, Structure | Molecule]] = []
    for row, (ident, text) in enumerate(
        zip(frame[CSV_ID_COLUMN] if has_id else frame.index, frame[CSV_STRUCTURE_COLUMN])
    ):
        where = f"{path} row {row + 2}"  # 1-based, after the header line: what an editor shows
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where} has an empty '{CSV_STRUCTURE_COLUMN}' cell.")
        structures = structures_from_cif(text, where)
        if len(structures) != 1:
            raise InputError(
                f"{where} holds {len(structures)} structures in its '{CSV_STRUCTURE_COLUMN}' cell; give one per row."
            )
        out.append((str(ident), structures[0][1]))
    return out


def _read_file(path: Path) -> list[tuple[str, Structure | Molecule]]:
    _regular_file(path)
    suffix = path.suffix.lower()
    if not _is_supported(path):
        raise InputError(f"{path} has an unsupported file type; supported: CIF, POSCAR/CONTCAR, extxyz, CSV, JSON.")
    if suffix in CSV_SUFFIXES:
        return _read_csv(path)  # reports its own row numbers
    text = read_text(path)
    try:
        if suffix in CIF_SUFFIXES:
            pairs = _read_cif(path, text)
        elif suffix in XYZ_SUFFIXES:
            pairs = _read_xyz(path, text)
        elif suffix in JSON_SUFFIXES:
            pairs = _read_json(path, text)
        else:
            pairs = _read_poscar(path, text)
    except InputError:
        raise
    except Exception as exc:  # parsers raise anything from ValueError to IndexError on broken files
        raise InputError(f"{path} cannot be read as a structure ({type(exc).__name__}: {shorten(exc)}).") from None
    if not pairs:
        raise InputError(f"{path} contains no structures.")
    return pairs


def _read_folder(folder: Path) -> list[tuple[str, Structure | Molecule]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _is_supported(p))
    if not files:
        raise InputError(f"{folder} contains no structure files (CIF, POSCAR/CONTCAR, extxyz, CSV, JSON).")
    out = []
    for path in files:
        out.extend(_read_file(path))
    return out


def read_structures(source) -> list[tuple[str, Structure | Molecule]]:
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


# --- writing ------------------------------------------------------------------------------------
def cif_text(structure, where: str) -> str:
    """The CIF of a periodic structure (InputError for a molecule)."""
    from pymatgen.io.cif import CifWriter

    if not hasattr(structure, "lattice"):
        raise InputError(f"{where} is a molecule; CIF needs a periodic structure.")
    return str(CifWriter(structure))


def write_cifs(structures: Sequence, folder, names: Sequence[str] | None = None) -> list[Path]:
    """Write one CIF per structure (items may be structures or ``(name, structure)`` pairs) into
    ``folder`` (a path or a :class:`~motif_screen.safe_paths.OutputFolder`) and nowhere else;
    returns the paths written.

    Names may come from data (a stored formula): each becomes a safe file name
    (:func:`motif_screen.safe_paths.file_name`). Every CIF is made before the first file is
    written, so a structure that cannot be written leaves nothing behind; each file is written
    to a temporary name and renamed, so a reader never sees half a CIF and a symbolic link
    planted in the folder is replaced, not followed.
    """
    pairs = []
    for i, item in enumerate(structures):
        if isinstance(item, tuple) and len(item) == 2:
            pairs.append((str(item[0]), item[1]))
        else:
            pairs.append((names[i] if names is not None else f"{i:06d}", item))
    files = [file_name(name, suffix=".cif", max_chars=MAX_NAME_BYTES - 8) for name, _ in pairs]
    if len(set(files)) != len(files):
        raise InputError("write_cifs was given duplicate names; each structure needs its own file name.")
    texts = [cif_text(structure, name) for name, structure in pairs]
    if isinstance(folder, OutputFolder):
        return [folder.write(name, text) for name, text in zip(files, texts)]
    with OutputFolder(folder) as out:
        return [out.write(name, text) for name, text in zip(files, texts)]
