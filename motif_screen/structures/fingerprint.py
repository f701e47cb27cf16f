"""A canonical, cheap fingerprint of a structure: the de-duplication key in MongoDB.

It must not change under the things that do not change a material — atom order, rotation,
translation, choice of supercell or setting — so it is built from symmetry-invariant data:
reduced formula, space group, sorted Wyckoff letters of the conventional cell, and volume per
atom on a 0.5 Å³ grid. Two entries with the same fingerprint are the same material for the
database's unique key; near-duplicates that fall on different grid cells are caught by
``StructureMatcher`` during screening, which uses this fingerprint's formula part to group.
"""

from __future__ import annotations

import hashlib

import numpy as np

from motif_screen.errors import InputError
from motif_screen.limits import geometry_problem

SYMPREC = 0.1  # Å, spglib tolerance used throughout (same as the validity checks)
VOLUME_GRID = 0.5  # Å³ per atom


def _digest(parts: list[str]) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:20]


def crystal_fingerprint(structure) -> str:
    """Formula, space group, Wyckoff letters of the primitive cell's sites, their number, volume per atom.

    One spglib symmetry search on the cell as given: the primitive cell's sites are the distinct
    values of the dataset's ``mapping_to_primitive``, each with the letter of a site that maps to it.
    (Until this search was one of three — find the primitive cell, then search it again — the key
    differed for about 1% of generated perovskite cells, those on the edge of a higher symmetry at
    ``SYMPREC``; candidates stored then keep the key they were stored with.)
    """
    import spglib

    formula = structure.composition.reduced_formula
    numbers = [site.specie.Z for site in structure]
    try:
        dataset = spglib.get_symmetry_dataset(
            (structure.lattice.matrix, structure.frac_coords, numbers), symprec=SYMPREC
        )
        if dataset is None:
            raise ValueError("spglib found no symmetry")
        number = int(dataset.number)
        first_site: dict[int, int] = {}
        for site, primitive_site in enumerate(dataset.mapping_to_primitive):
            first_site.setdefault(int(primitive_site), site)
        species = structure.species
        wyckoffs = "".join(sorted(f"{species[i]}{dataset.wyckoffs[i]}" for i in first_site.values()))
        nprim = len(first_site)
    except Exception:  # spglib gives up on badly distorted cells: fall back to P1 data
        number, wyckoffs, nprim = 1, "a" * len(structure), len(structure)
    vol = round(structure.volume / len(structure) / VOLUME_GRID)
    return f"{formula}-{number}-" + _digest([formula, str(number), wyckoffs, str(nprim), str(vol)])


def molecule_fingerprint(molecule) -> str:
    formula = molecule.composition.reduced_formula
    coords = np.asarray(molecule.cart_coords)
    dists = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    upper = np.sort(np.round(dists[np.triu_indices(len(coords), 1)] / 0.05).astype(int))
    return f"{molecule.composition.formula.replace(' ', '')}-mol-" + _digest([formula, ",".join(map(str, upper))])


def fingerprint(structure) -> str:
    """Canonical fingerprint of a pymatgen ``Structure`` or ``Molecule``; InputError for a
    structure outside :mod:`motif_screen.limits` (no atoms, a 1e300 Å lattice, NaN positions),
    whose symmetry and volume would be meaningless or overflow."""
    problem = "it has no atoms" if len(structure) == 0 else geometry_problem(structure)
    if problem:
        raise InputError(f"cannot fingerprint {structure.composition.reduced_formula or 'a structure'}: {problem}.")
    return crystal_fingerprint(structure) if hasattr(structure, "lattice") else molecule_fingerprint(structure)


def formula_key(structure) -> str:
    """The cheap pre-filter group: only structures with the same key can match."""
    return structure.composition.reduced_formula
