"""The fingerprint of a training set, stored as ``ModelVersion.data_fingerprint`` and in checkpoints.

One scheme for every training run (property models, autoencoders, fine-tuning on oracle results):
each (structure, labels) pair is hashed on its own — the structure through its canonical
fingerprint (:func:`motif_screen.structures.fingerprint.fingerprint`: invariant to atom order,
rotation, translation and setting), the labels rounded to 6 significant digits — and the sorted
pair hashes are hashed again. The result does not depend on the order of the data, but on every
pair and on how often it occurs. It carries its scheme, ``"v3:"``, so that a later scheme can
never be mistaken for this one.

``"v2:"`` values were computed the same way with the earlier structure fingerprint (three symmetry
searches per structure instead of one; about 1% of generated perovskite cells get another key), so
the same data gives another v2 than v3 value: a v2 value is kept as it is (its prefix says which
scheme made it) and recomputed as v3 where the data is at hand.

Values written before this scheme had no prefix: a 16-hex sha256 over the data *in order*
(training runs) or a 20-hex sha1 over the sorted (structure, value) pairs (campaign fine-tuning).
They cannot be turned into current values without the data; :func:`migrate_fingerprint` tags them
(``"legacy-sha256:"``, ``"legacy-sha1:"``) so they are told apart from current values and from each
other, and recomputes the current value when the data is given.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
from pymatgen.core import Lattice, Molecule, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.structures.fingerprint import fingerprint

__all__ = ["EARLIER_SCHEMES", "LEGACY_PREFIXES", "SCHEME", "data_fingerprint", "migrate_fingerprint"]

SCHEME = "v3:"
EARLIER_SCHEMES = ("v2:",)  # prefixed values of earlier schemes: kept as they are
LEGACY_PREFIXES = {16: "legacy-sha256:", 20: "legacy-sha1:"}  # length of an untagged hex value -> its tag
_HEX = re.compile(r"[0-9a-f]+")


def _pymatgen(item, index: int):
    """A pymatgen Structure / Molecule for a pymatgen object, ASE Atoms or a graph dict."""
    if hasattr(item, "cart_coords"):
        return item
    if hasattr(item, "get_positions"):  # ASE Atoms
        return AseAtomsAdaptor.get_structure(item) if any(item.get_pbc()) else AseAtomsAdaptor.get_molecule(item)
    if isinstance(item, dict) and keys.POSITIONS in item:  # a graph (motif_screen.graphs.to_graph)
        numbers = item[keys.ATOMIC_NUMBERS].tolist()
        positions = item[keys.POSITIONS].double().numpy()
        if bool(item[keys.PBC].any()):
            return Structure(
                Lattice(item[keys.CELL][0].double().numpy()), numbers, positions, coords_are_cartesian=True
            )
        return Molecule(numbers, positions)
    raise InputError(f"training item {index} is a {type(item).__name__}, not a structure")


def _label(value) -> str:
    value = float("nan") if value is None else float(value)
    return "nan" if not math.isfinite(value) else f"{value:.6g}"


def data_fingerprint(structures: Sequence, targets: Mapping[str, Sequence | np.ndarray]) -> str:
    """``"v3:"`` + 16 hex digits over the (structure, labels) pairs, independent of their order.

    ``targets`` maps each label name to one value per structure (None / NaN = missing)."""
    names = sorted(targets)
    for name in names:
        if len(targets[name]) != len(structures):
            raise InputError(f"target {name} has {len(targets[name])} values for {len(structures)} structures")
    pairs = []
    for i, item in enumerate(structures):
        labels = ";".join(f"{name}={_label(targets[name][i])}" for name in names)
        pairs.append(hashlib.sha256(f"{fingerprint(_pymatgen(item, i))}|{labels}".encode()).hexdigest())
    digest = hashlib.sha256()
    digest.update(",".join(names).encode())
    for pair in sorted(pairs):
        digest.update(pair.encode())
    return SCHEME + digest.hexdigest()[:16]


def migrate_fingerprint(
    value: str | None,
    structures: Sequence | None = None,
    targets: Mapping[str, Sequence | np.ndarray] | None = None,
) -> str | None:
    """A stored ``data_fingerprint`` in the current scheme where possible.

    With the data (``structures`` and ``targets``) the current value is recomputed; without it a
    current or earlier-scheme (``v2:``) value is kept, an untagged legacy value is tagged with its
    scheme, and a value of no known
    scheme is tagged ``"unknown:"``. ``None`` (no fingerprint recorded) stays ``None``."""
    if structures is not None and targets is not None:
        return data_fingerprint(structures, targets)
    if (
        value is None
        or value.startswith((SCHEME, *EARLIER_SCHEMES))
        or value.startswith(tuple(LEGACY_PREFIXES.values()))
        or value.startswith("unknown:")
    ):
        return value
    prefix = LEGACY_PREFIXES.get(len(value)) if _HEX.fullmatch(value) else None
    return (prefix or "unknown:") + value
