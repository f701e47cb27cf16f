"""Chemical checks of generated molecules with EDM's definitions (Hoogeboom et al. 2022), so that
QM9 numbers stand beside EDM's and G-SchNet's:

* **bond orders from distances**: a pair of atoms is bonded (order 1) when closer than the typical
  single-bond length + 10 pm; double (2) when also closer than the double-bond length + 5 pm;
  triple (3) when also closer than the triple-bond length + 3 pm (margins tuned by EDM so that
  the QM9 molecules themselves come out stable). Typical lengths are textbook values
  (wiredchemist / chemistry-reference tables, as EDM cites);
* **atom stability**: the sum of an atom's bond orders equals its valence (H 1, C 4, N 3, O 2, F 1);
  **molecule stability**: every atom is stable. Hydrogens count (EDM's QM9 numbers are with H);
* **validity**: RDKit sanitises the molecule built from those bonds (RDKit adds implicit hydrogens
  to under-bonded atoms, so validity is looser than stability); the SMILES kept is that of the
  largest fragment; **uniqueness** is the fraction of distinct SMILES among valid molecules and
  **novelty** the fraction of those unique SMILES absent from a reference (training) set.

Only the QM9 elements (H, C, N, O, F) have bond tables here: another element raises InputError,
because a silently "unbonded" atom would make the metrics meaningless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from motif_screen.errors import ConfigError, InputError

__all__ = [
    "MARGINS_PM",
    "VALENCE",
    "MoleculeCheck",
    "bond_orders",
    "check_molecule",
    "valences_can_pair",
    "molecule_metrics",
    "molecule_smiles",
    "rdkit_molecule",
]

SYMBOLS = ("H", "C", "N", "O", "F")
_INDEX = {1: 0, 6: 1, 7: 2, 8: 3, 9: 4}  # atomic number -> row of the tables below
VALENCE = {1: 1, 6: 4, 7: 3, 8: 2, 9: 1}
MARGINS_PM = (10.0, 5.0, 3.0)  # added to the single / double / triple bond lengths


def valences_can_pair(counts: dict[int, int]) -> bool:
    """Whether a formula (atomic number -> count) can be one closed-shell molecule: every element
    has a valence here, the valences sum to an even number (every bond uses two) and there are
    enough of them to connect all atoms (degree of unsaturation sum(v)/2 - (n - 1) >= 0). The
    molecular counterpart of charge balance: no stable molecule has a formula that fails it."""
    atoms = {z: n for z, n in counts.items() if n}
    if not atoms or any(z not in VALENCE for z in atoms):
        return False
    total = sum(VALENCE[z] * n for z, n in atoms.items())
    return total % 2 == 0 and total // 2 >= sum(atoms.values()) - 1


# Typical bond lengths in pm, rows and columns in SYMBOLS order; NaN = no such bond.
_NO = np.nan
_SINGLE = np.array(
    [
        #  H     C     N     O     F
        [74.0, 109.0, 101.0, 96.0, 92.0],  # H
        [109.0, 154.0, 147.0, 143.0, 135.0],  # C
        [101.0, 147.0, 145.0, 140.0, 136.0],  # N
        [96.0, 143.0, 140.0, 148.0, 142.0],  # O
        [92.0, 135.0, 136.0, 142.0, 142.0],  # F
    ]
)
_DOUBLE = np.array(
    [
        [_NO, _NO, _NO, _NO, _NO],
        [_NO, 134.0, 129.0, 120.0, _NO],
        [_NO, 129.0, 125.0, 121.0, _NO],
        [_NO, 120.0, 121.0, 121.0, _NO],
        [_NO, _NO, _NO, _NO, _NO],
    ]
)
_TRIPLE = np.array(
    [
        [_NO, _NO, _NO, _NO, _NO],
        [_NO, 120.0, 116.0, 113.0, _NO],
        [_NO, 116.0, 110.0, _NO, _NO],
        [_NO, 113.0, _NO, _NO, _NO],
        [_NO, _NO, _NO, _NO, _NO],
    ]
)
# distance thresholds in Å: order = number of thresholds a distance falls below
_THRESHOLDS = np.stack([(_SINGLE + MARGINS_PM[0]), (_DOUBLE + MARGINS_PM[1]), (_TRIPLE + MARGINS_PM[2])]) / 100.0


def _species_rows(numbers: Sequence[int], name: str | None = None) -> np.ndarray:
    numbers = [int(z) for z in numbers]
    unknown = sorted({z for z in numbers if z not in _INDEX})
    if unknown:
        raise InputError(
            f"{name or 'molecule'} contains element(s) with atomic number {unknown}; "
            f"bond-order checks know only {', '.join(SYMBOLS)} (the QM9 elements)"
        )
    return np.array([_INDEX[z] for z in numbers], dtype=np.int64)


def _numbers_positions(molecule) -> tuple[list[int], np.ndarray]:
    """(atomic numbers, Cartesian Å) of a pymatgen Molecule, ASE Atoms or a (numbers, positions) pair."""
    if isinstance(molecule, tuple) and len(molecule) == 2:
        numbers, positions = molecule
    elif hasattr(molecule, "cart_coords") and hasattr(molecule, "atomic_numbers"):
        numbers, positions = molecule.atomic_numbers, molecule.cart_coords
    elif hasattr(molecule, "get_positions"):
        numbers, positions = molecule.get_atomic_numbers(), molecule.get_positions()
    else:
        raise InputError(
            f"a {type(molecule).__name__} is not a molecule (give a pymatgen Molecule, ASE Atoms "
            "or (atomic numbers, positions))"
        )
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    if len(positions) != len(numbers):
        raise InputError(f"got {len(numbers)} atomic numbers but {len(positions)} positions")
    return [int(z) for z in numbers], positions


def bond_orders(numbers: Sequence[int], positions, name: str | None = None) -> np.ndarray:
    """(N, N) symmetric integer bond orders 0-3 from interatomic distances (EDM's rule, vectorised)."""
    rows = _species_rows(numbers, name)
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    dist = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    limits = _THRESHOLDS[:, rows[:, None], rows[None, :]]  # (3, N, N), NaN where no such bond
    with np.errstate(invalid="ignore"):
        orders = (dist[None] < limits).sum(0)  # NaN compares False
    np.fill_diagonal(orders, 0)
    return orders.astype(np.int64)


@dataclass(frozen=True)
class MoleculeCheck:
    """EDM's per-molecule verdict: which atoms have their valence, and the RDKit outcome."""

    n_atoms: int
    n_stable_atoms: int
    stable: bool
    smiles: str | None  # canonical SMILES of the largest fragment; None when RDKit rejects it
    reason: str  # "" when stable, else the first atom whose bond count is off (e.g. "C3 has 5 bonds, needs 4")

    @property
    def valid(self) -> bool:
        return self.smiles is not None


def rdkit_molecule(numbers: Sequence[int], orders: np.ndarray):
    """An RDKit molecule (not yet sanitised) with one atom per number and the given bond orders."""
    try:  # RDKit is an optional extra (qm9): imported where it is used
        from rdkit import Chem
    except ImportError:
        raise ConfigError(
            "molecule validity needs RDKit: install the qm9 extra (pip install 'motif_screen[qm9]')"
        ) from None
    bond_type = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    mol = Chem.RWMol()
    for z in numbers:
        mol.AddAtom(Chem.Atom(int(z)))
    i_idx, j_idx = np.nonzero(np.triu(orders, 1))
    for i, j in zip(i_idx.tolist(), j_idx.tolist()):
        mol.AddBond(i, j, bond_type[int(orders[i, j])])
    return mol


def _sanitised_smiles(mol) -> str | None:
    from rdkit import Chem, rdBase  # optional extra, see rdkit_molecule

    rdBase.DisableLog("rdApp.*")  # a rejected molecule is a counted outcome, not console noise
    try:
        Chem.SanitizeMol(mol)
        fragments = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=True)
        largest = max(fragments, default=mol, key=lambda m: m.GetNumAtoms())
        return Chem.MolToSmiles(largest)
    except (ValueError, RuntimeError):  # MolSanitizeException derives from ValueError
        return None


def molecule_smiles(molecule, name: str | None = None) -> str | None:
    """Canonical SMILES (largest fragment) of a molecule with bonds from distances; None if RDKit rejects it."""
    numbers, positions = _numbers_positions(molecule)
    return _sanitised_smiles(rdkit_molecule(numbers, bond_orders(numbers, positions, name)))


def check_molecule(molecule, name: str | None = None, with_smiles: bool = True) -> MoleculeCheck:
    """Atom and molecule stability (EDM) and, if ``with_smiles``, RDKit validity of one molecule."""
    numbers, positions = _numbers_positions(molecule)
    if not numbers:
        raise InputError(f"{name or 'molecule'} has no atoms")
    orders = bond_orders(numbers, positions, name)
    bonds = orders.sum(1)
    needed = np.array([VALENCE[z] for z in numbers])
    ok = bonds == needed
    reason = ""
    if not ok.all():
        k = int(np.flatnonzero(~ok)[0])
        reason = f"{SYMBOLS[_INDEX[numbers[k]]]}{k} has {int(bonds[k])} bonds, needs {int(needed[k])}"
    smiles = _sanitised_smiles(rdkit_molecule(numbers, orders)) if with_smiles else None
    return MoleculeCheck(len(numbers), int(ok.sum()), bool(ok.all()), smiles, reason)


def molecule_metrics(molecules: Iterable, reference_smiles: Iterable[str] | None = None) -> dict:
    """EDM's metrics over a list of molecules, as a flat dict of numbers.

    ``atom_stability`` (stable atoms / all atoms), ``molecule_stability``, ``validity`` (RDKit
    sanitises), ``uniqueness`` (distinct SMILES / valid), ``valid_and_unique`` (distinct / all, EDM's
    "Valid and Unique" column), ``novelty`` (distinct SMILES not in ``reference_smiles`` / distinct;
    only when a reference is given), ``n_molecules``, ``n_atoms``, ``mean_atoms``.
    """
    checks = [check_molecule(m) for m in molecules]
    if not checks:
        raise InputError("no molecules were given to evaluate")
    n_atoms = sum(c.n_atoms for c in checks)
    valid = [c.smiles for c in checks if c.valid]
    unique = set(valid)
    out = {
        "atom_stability": sum(c.n_stable_atoms for c in checks) / n_atoms,
        "molecule_stability": sum(c.stable for c in checks) / len(checks),
        "validity": len(valid) / len(checks),
        "uniqueness": len(unique) / len(valid) if valid else 0.0,
        "valid_and_unique": len(unique) / len(checks),
        "n_molecules": float(len(checks)),
        "n_atoms": float(n_atoms),
        "mean_atoms": n_atoms / len(checks),
    }
    if reference_smiles is not None:
        reference = set(reference_smiles)
        out["novelty"] = sum(s not in reference for s in unique) / len(unique) if unique else 0.0
    return out
