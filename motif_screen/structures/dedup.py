"""De-duplication: inside a batch of candidates, and against a reference set (training data, database).

The ground truth is pymatgen's ``StructureMatcher`` with CDVAE's settings (``stol=0.5,
angle_tol=10, ltol=0.3``; other options pymatgen's defaults: primitive cell, volume scaling, no
supercells), so our uniqueness and novelty numbers compare with CDVAE's. ``StructureMatcher`` is
slow (milliseconds per pair), so two things keep 10,000 × 10,000 tractable without changing
any answer:

* **exact pre-filter** — the matcher never matches different reduced formulas, so structures are
  grouped by :func:`motif_screen.structures.fingerprint.formula_key` and only pairs inside a
  group are compared (the canonical fingerprint itself costs a spglib call per structure, more
  than it saves here);
* **reduce once** — each structure's primitive, Niggli-reduced cell is computed at most once,
  lazily, and only when its group has someone to compare with; pairs are then fitted with
  ``skip_structure_reduction=True``.

Molecules are compared by formula and sorted interatomic distances (all within ``0.1 Å``):
``StructureMatcher`` is for periodic structures and ``MoleculeMatcher`` needs OpenBabel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from motif_screen.structures.fingerprint import formula_key

__all__ = [
    "CDVAE_MATCHER_SETTINGS",
    "MOLECULE_DISTANCE_TOL",
    "default_matcher",
    "duplicate_of",
    "unique_indices",
    "ReferenceSet",
    "reference_matches",
    "novel_mask",
]

CDVAE_MATCHER_SETTINGS = {"stol": 0.5, "angle_tol": 10, "ltol": 0.3}
MOLECULE_DISTANCE_TOL = 0.1  # Å, largest difference of any sorted interatomic distance


def default_matcher():
    """``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)`` — CDVAE's evaluation settings."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**CDVAE_MATCHER_SETTINGS)


def _is_periodic(structure) -> bool:
    return hasattr(structure, "lattice")


def _group_key(structure) -> tuple[str, bool]:
    return formula_key(structure), _is_periodic(structure)


class _Prepared:
    """A structure plus its lazily computed matcher-ready form (reduced cell or distance list)."""

    __slots__ = ("structure", "_ready")

    def __init__(self, structure):
        self.structure = structure
        self._ready = None

    def ready(self, matcher):
        if self._ready is None:
            s = self.structure
            if _is_periodic(s):
                self._ready = matcher._get_reduced_structure(s, matcher._primitive_cell, True)
            else:
                coords = np.asarray(s.cart_coords)
                d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
                self._ready = np.sort(d[np.triu_indices(len(coords), 1)])
        return self._ready


def _same(a: _Prepared, b: _Prepared, matcher) -> bool:
    ra, rb = a.ready(matcher), b.ready(matcher)
    if isinstance(ra, np.ndarray):
        return len(ra) == len(rb) and (len(ra) == 0 or float(np.abs(ra - rb).max()) <= MOLECULE_DISTANCE_TOL)
    if len(ra) != len(rb) and not matcher._supercell:
        return False  # different primitive cells never match without supercells
    return bool(matcher.fit(ra, rb, skip_structure_reduction=True))


def duplicate_of(structures: Sequence, matcher=None) -> list[int]:
    """For each structure, the index of the first earlier structure it matches (itself if none)."""
    matcher = matcher or default_matcher()
    prepared = [_Prepared(s) for s in structures]
    representatives: dict[tuple, list[int]] = {}
    result = []
    for i, item in enumerate(prepared):
        group = representatives.setdefault(_group_key(item.structure), [])
        match = next((j for j in group if _same(item, prepared[j], matcher)), None)
        if match is None:
            group.append(i)
            result.append(i)
        else:
            result.append(match)
    return result


def unique_indices(structures: Sequence, matcher=None) -> list[int]:
    """Indices of the first structure of each group of matching structures, in input order."""
    return [i for i, rep in enumerate(duplicate_of(structures, matcher)) if rep == i]


class ReferenceSet:
    """Reference structures grouped by formula, with reduced cells cached across queries.

    Build it once per campaign round (or keep it) and query many candidates against it; only the
    formula groups that candidates hit are ever reduced.
    """

    def __init__(self, references: Sequence, matcher=None):
        self.matcher = matcher or default_matcher()
        self._items = [_Prepared(s) for s in references]
        self._groups: dict[tuple, list[int]] = {}
        for i, item in enumerate(self._items):
            self._groups.setdefault(_group_key(item.structure), []).append(i)

    def __len__(self) -> int:
        return len(self._items)

    def find(self, structure, prepared: _Prepared | None = None) -> int | None:
        """Index of the first reference matching ``structure``, or ``None`` (novel)."""
        candidates = self._groups.get(_group_key(structure))
        if not candidates:
            return None
        prepared = prepared or _Prepared(structure)
        return next((j for j in candidates if _same(prepared, self._items[j], self.matcher)), None)


def reference_matches(structures: Sequence, references, matcher=None) -> list[int | None]:
    """For each structure, the index of a matching reference, or ``None``."""
    refs = references if isinstance(references, ReferenceSet) else ReferenceSet(references, matcher)
    return [refs.find(s) for s in structures]


def novel_mask(structures: Sequence, references, matcher=None) -> np.ndarray:
    """Boolean mask: ``True`` where a structure matches no reference (``references`` may be a ReferenceSet)."""
    return np.array([m is None for m in reference_matches(structures, references, matcher)], dtype=bool)
