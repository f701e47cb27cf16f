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
  ``skip_structure_reduction=True``; the primitive-cell search is skipped when the cell holds one
  formula unit (then it is primitive already);
* **sure matches first** — before calling the matcher, a vectorised check looks for a signed axis
  permutation and translation under which the two greedy-reduced cells and all same-species
  sites coincide within a quarter of the matcher's tolerances. Passing it implies the matcher
  would match too, so it only ever answers "same";
* **sure mismatches next** — a relaxation of the matcher's own search (same lattice mappings,
  every species-preserving site bijection, a translation-free pairwise displacement test) that
  only ever answers "different"; what neither check settles goes to ``StructureMatcher.fit``.
  Both shortcuts are checked against ``fit`` in the tests; neither changes an answer.

Molecules are compared by formula and sorted interatomic distances (all within ``0.1 Å``):
``StructureMatcher`` is for periodic structures and ``MoleculeMatcher`` needs OpenBabel.
"""

from __future__ import annotations

import itertools
import math
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


_SIGNED_PERMUTATIONS = np.array(
    [np.eye(3)[list(p)] * np.array(signs)[:, None] for p in itertools.permutations(range(3)) for signs in itertools.product((1, -1), repeat=3)]
)
FAST_FRACTION = 0.25  # the sure-match check uses this fraction of the matcher's tolerances


def _greedy_reduce(matrix: np.ndarray) -> np.ndarray:
    """A short, nearly orthogonal basis of the same lattice (pairwise size reduction; numpy only)."""
    basis = np.array(matrix, dtype=float)
    for _ in range(100):
        changed = False
        basis = basis[np.argsort(np.einsum("ij,ij->i", basis, basis), kind="stable")]
        for i in range(3):
            for j in range(3):
                if i == j:
                    continue
                k = np.round(basis[j] @ basis[i] / (basis[i] @ basis[i]))
                if k:
                    basis[j] -= k * basis[i]
                    changed = True
        if not changed:
            break
    if np.linalg.det(basis) < 0:
        basis[2] = -basis[2]
    return basis


def _fast_ok(matcher) -> bool:
    """The sure-match check mirrors pymatgen's defaults only; other matcher options go straight to fit()."""
    from pymatgen.analysis.structure_matcher import SpeciesComparator

    return (
        type(matcher._comparator) is SpeciesComparator
        and not matcher._supercell
        and not matcher._subset
        and matcher._scale
    )


class _Prepared:
    """A structure plus its lazily computed matcher-ready forms (reduced cell, fast-check arrays)."""

    __slots__ = ("structure", "_ready", "_fast")

    def __init__(self, structure):
        self.structure = structure
        self._ready = None
        self._fast = None

    def ready(self, matcher):
        if self._ready is None:
            s = self.structure
            if _is_periodic(s):
                _, z = s.composition.get_reduced_composition_and_factor()
                primitive = matcher._primitive_cell and z > 1  # one formula unit: already primitive
                self._ready = matcher._get_reduced_structure(s, primitive, True)
            else:
                coords = np.asarray(s.cart_coords)
                d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
                self._ready = np.sort(d[np.triu_indices(len(coords), 1)])
        return self._ready

    def fast(self):
        """(reduced basis scaled to 1 Å³/atom, fractional coords in it, species labels)."""
        if self._fast is None:
            s = self.structure
            basis = _greedy_reduce(s.lattice.matrix)
            frac = np.asarray(s.cart_coords) @ np.linalg.inv(basis)
            basis = basis / (abs(np.linalg.det(basis)) / len(s)) ** (1 / 3)
            self._fast = (basis, frac - np.floor(frac), np.array([str(site.specie) for site in s]))
        return self._fast


def _sure_match(a: _Prepared, b: _Prepared, matcher) -> bool:
    """True only if the two structures certainly match under ``matcher`` (see module docstring)."""
    if len(a.structure) != len(b.structure):
        return False
    basis_a, frac_a, spec_a = a.fast()
    basis_b, frac_b, spec_b = b.fast()
    if sorted(spec_a) != sorted(spec_b):
        return False
    ltol, angle_tol, stol = (FAST_FRACTION * t for t in (matcher.ltol, matcher.angle_tol, matcher.stol))
    # candidate bases P·A (rows) compared with B: lengths and angles
    rotated = _SIGNED_PERMUTATIONS @ basis_a  # (48, 3, 3)
    len_a, len_b = np.linalg.norm(rotated, axis=2), np.linalg.norm(basis_b, axis=1)
    ok = np.all(np.abs(len_a / len_b - 1) < ltol, axis=1)
    if not ok.any():
        return False

    def angles(m):
        n = m / np.linalg.norm(m, axis=-1, keepdims=True)
        pairs = [(1, 2), (0, 2), (0, 1)]
        return np.degrees(np.arccos(np.clip([np.sum(n[..., i, :] * n[..., j, :], axis=-1) for i, j in pairs], -1, 1)))

    ok &= np.all(np.abs(angles(rotated) - angles(basis_b)[:, None]) < angle_tol, axis=0)
    if not ok.any():
        return False
    species = np.unique(spec_b)
    rarest = min(species, key=lambda x: int((spec_b == x).sum()))
    anchor = int(np.flatnonzero(spec_a == rarest)[0])
    perms = _SIGNED_PERMUTATIONS[ok]  # (K, 3, 3)
    fa = np.einsum("nj,kij->kni", frac_a, perms)  # A's fractional coords in each permuted basis (K, n, 3)
    targets = frac_b[spec_b == rarest]  # (T, 3): where A's anchor may land
    shifted = fa[:, None] + (targets[None, :, None, :] - fa[:, None, anchor : anchor + 1, :])  # (K, T, n, 3)
    good = np.ones(shifted.shape[:2], dtype=bool)
    for x in species:  # cells are scaled to 1 Å³/atom, so the matcher's length unit (V/n)^(1/3) is 1
        da, db = shifted[:, :, spec_a == x], frac_b[spec_b == x]
        diff = da[:, :, :, None, :] - db[None, None, None, :, :]
        diff -= np.round(diff)
        dist = np.linalg.norm(diff @ basis_b, axis=-1)  # (K, T, na, nb)
        nearest = dist.argmin(axis=-1)
        one_to_one = np.sort(nearest, axis=-1)
        one_to_one = np.all(np.diff(one_to_one, axis=-1) > 0, axis=-1) if one_to_one.shape[-1] > 1 else np.ones_like(good)
        good &= one_to_one & (dist.min(axis=-1).max(axis=-1) <= stol)
        if not good.any():
            return False
    return bool(good.any())


MAX_ASSIGNMENTS = 5040  # species-preserving site bijections tried by the sure-mismatch check


def _site_assignments(species1: list[str], species2: list[str]) -> np.ndarray | None:
    """All species-preserving bijections: row s gives, for each site of 2, its partner site of 1."""
    groups = []
    for x in sorted(set(species2)):
        idx1 = [i for i, sp in enumerate(species1) if sp == x]
        idx2 = [i for i, sp in enumerate(species2) if sp == x]
        if len(idx1) != len(idx2):
            return None
        groups.append((idx1, idx2))
    if np.prod([float(math.factorial(len(i1))) for i1, _ in groups]) > MAX_ASSIGNMENTS:
        return None
    rows = [np.zeros(len(species2), dtype=int)]
    for idx1, idx2 in groups:
        new_rows = []
        for row in rows:
            for perm in itertools.permutations(idx1):
                r = row.copy()
                r[idx2] = perm
                new_rows.append(r)
        rows = new_rows
        if len(rows) > MAX_ASSIGNMENTS:
            return None
    return np.array(rows)


def _angle_matrix(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    lu, lv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip((u @ v.T) / lu[:, None] / lv[None, :], -1, 1)))


def _lattice_mappings(lattice1, matrix2: np.ndarray, ltol: float, atol: float) -> np.ndarray:
    """Every basis of lattice 1 that pymatgen's ``Lattice.find_all_mappings(lattice2, ltol, atol)`` yields
    with a unimodular scale matrix (a superset: tolerances get a 1e-6 margin), vectorised. (K, 3, 3)."""
    lengths2 = np.linalg.norm(matrix2, axis=1)
    alpha = _angle_matrix(matrix2[1:2], matrix2[2:3])[0, 0]
    beta = _angle_matrix(matrix2[0:1], matrix2[2:3])[0, 0]
    gamma = _angle_matrix(matrix2[0:1], matrix2[1:2])[0, 0]
    margin = 1e-6
    frac, dist, _, _ = lattice1.get_points_in_sphere(
        [[0, 0, 0]], [0, 0, 0], lengths2.max() * (1 + ltol) * (1 + margin), zip_results=False
    )
    frac, dist = np.asarray(frac), np.asarray(dist)
    cart = frac @ np.asarray(lattice1.matrix)
    picks = [(dist / ln < (1 + ltol) * (1 + margin)) & (dist / ln > 1 / (1 + ltol) * (1 - margin)) for ln in lengths2]
    (ca, cb, cc), (fa, fb, fc) = [cart[p] for p in picks], [frac[p] for p in picks]
    if not (len(ca) and len(cb) and len(cc)):
        return np.zeros((0, 3, 3))
    tol = atol + margin
    ok = (
        (np.abs(_angle_matrix(ca, cb) - gamma) < tol)[:, :, None]
        & (np.abs(_angle_matrix(cb, cc) - alpha) < tol)[None, :, :]
        & (np.abs(_angle_matrix(ca, cc) - beta) < tol)[:, None, :]
    )
    i, j, k = np.nonzero(ok)
    scale = np.stack([fa[i], fb[j], fc[k]], axis=1)
    det = np.abs(np.linalg.det(np.round(scale)))
    keep = (det > 1e-8) & (np.abs(det - 1) <= 0.5)
    return np.stack([ca[i], cb[j], cc[k]], axis=1)[keep]


def _sure_mismatch(ra, rb, matcher) -> bool:
    """True only if ``matcher.fit(ra, rb, skip_structure_reduction=True)`` is certainly False.

    A relaxation of the matcher's own search: for every lattice mapping it would try
    (``find_all_mappings`` with the same tolerances, on the same rescaled cells) and every
    species-preserving site bijection, a match needs some translation that puts every site
    within ``r = stol·(V/n)^(1/3)`` of its partner, hence every PAIR of displacement vectors
    within ``2r`` of each other modulo the lattice — a translation-free condition checked with
    an exhaustive image search. If no mapping and bijection pass, the matcher cannot match.
    """
    s1, s2, fu, _ = matcher._preprocess(ra, rb, skip_structure_reduction=True)
    if fu != 1 or len(s1) != len(s2) or len(s1) < 2:
        return False
    sigma = _site_assignments([str(x) for x in s1.species], [str(x) for x in s2.species])
    if sigma is None:
        return False
    mappings = _lattice_mappings(s1.lattice, np.asarray(s2.lattice.matrix), matcher.ltol, matcher.angle_tol)
    if not len(mappings):
        return True
    mats = mappings  # (K, 3, 3) rows = lattice vectors of s1 in each mapped basis
    # the matcher measures distances in the lattice whose parameters average the two (from_parameters)
    def parameters(m):
        lengths = np.linalg.norm(m, axis=-1)
        unit = m / lengths[..., None]
        cos = np.stack([np.sum(unit[..., 1, :] * unit[..., 2, :], -1), np.sum(unit[..., 0, :] * unit[..., 2, :], -1),
                        np.sum(unit[..., 0, :] * unit[..., 1, :], -1)], -1)
        return lengths, np.degrees(np.arccos(np.clip(cos, -1, 1)))

    len1, ang1 = parameters(mats)
    len2, ang2 = parameters(np.asarray(s2.lattice.matrix))
    abc, angles = (len1 + len2) / 2, (ang1 + ang2) / 2
    ca, cb, cg = np.cos(np.radians(angles)).T
    a_, b_, c_ = abc.T
    metric = np.stack([np.stack([a_ * a_, a_ * b_ * cg, a_ * c_ * cb], -1), np.stack([a_ * b_ * cg, b_ * b_, b_ * c_ * ca], -1),
                       np.stack([a_ * c_ * cb, b_ * c_ * ca, c_ * c_], -1)], -2)  # (K, 3, 3)
    volume = np.sqrt(np.clip(np.linalg.det(metric), 1e-12, None))
    reach = 2 * matcher.stol * (volume / len(s2)) ** (1 / 3) * (1 + 1e-9)  # (K,)
    chol = np.linalg.cholesky(metric)  # metric = chol @ chol.T: fractional row f -> f @ chol has the same length
    # image range that provably holds every lattice vector within `reach` of a wrapped difference
    recip = np.sqrt(np.diagonal(np.linalg.inv(metric), axis1=-2, axis2=-1))  # (K, 3)
    kmax = np.ceil(0.5 + (reach[:, None] * recip).max(axis=0)).astype(int)
    images = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in kmax], indexing="ij"), -1).reshape(-1, 3)
    frac1 = np.einsum("ni,kij->knj", np.asarray(s1.cart_coords), np.linalg.inv(mats))  # (K, n, 3)
    displacement = frac1[:, sigma] - np.asarray(s2.frac_coords)[None, None]  # (K, S, n, 3)
    i, j = np.triu_indices(len(s2), 1)
    pair = displacement[:, :, i] - displacement[:, :, j]  # (K, S, P, 3)
    pair -= np.round(pair)
    pair_c = np.einsum("kspi,kij->kspj", pair, chol, optimize=True)
    image_c = np.einsum("mi,kij->kmj", images, chol, optimize=True)  # (K, M, 3)
    d2 = ((pair_c[:, :, :, None, :] + image_c[:, None, None, :, :]) ** 2).sum(-1).min(-1)  # (K, S, P)
    return not bool(np.any(np.all(d2 <= (reach * reach)[:, None, None], axis=-1)))


def _first_match(item: _Prepared, others: list[_Prepared], matcher) -> int | None:
    """Position of the first of ``others`` that matches ``item``: cheap sure matches are tried on all first."""
    if not others:
        return None
    if _is_periodic(item.structure) and _fast_ok(matcher):
        sure = next((k for k, other in enumerate(others) if _sure_match(item, other, matcher)), None)
        if sure is not None:
            return sure
    return next((k for k, other in enumerate(others) if _same(item, other, matcher)), None)


def _same(a: _Prepared, b: _Prepared, matcher) -> bool:
    ra, rb = a.ready(matcher), b.ready(matcher)
    if isinstance(ra, np.ndarray):
        return len(ra) == len(rb) and (len(ra) == 0 or float(np.abs(ra - rb).max()) <= MOLECULE_DISTANCE_TOL)
    if len(ra) != len(rb) and not matcher._supercell:
        return False  # different primitive cells never match without supercells
    if _fast_ok(matcher) and _sure_mismatch(ra, rb, matcher):
        return False
    return bool(matcher.fit(ra, rb, skip_structure_reduction=True))


def duplicate_of(structures: Sequence, matcher=None) -> list[int]:
    """For each structure, the index of the first earlier structure it matches (itself if none)."""
    matcher = matcher or default_matcher()
    prepared = [_Prepared(s) for s in structures]
    representatives: dict[tuple, list[int]] = {}
    result = []
    for i, item in enumerate(prepared):
        group = representatives.setdefault(_group_key(item.structure), [])
        position = _first_match(item, [prepared[j] for j in group], matcher)
        match = None if position is None else group[position]
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
        position = _first_match(prepared, [self._items[j] for j in candidates], self.matcher)
        return None if position is None else candidates[position]


def reference_matches(structures: Sequence, references, matcher=None) -> list[int | None]:
    """For each structure, the index of a matching reference, or ``None``."""
    refs = references if isinstance(references, ReferenceSet) else ReferenceSet(references, matcher)
    return [refs.find(s) for s in structures]


def novel_mask(structures: Sequence, references, matcher=None) -> np.ndarray:
    """Boolean mask: ``True`` where a structure matches no reference (``references`` may be a ReferenceSet)."""
    return np.array([m is None for m in reference_matches(structures, references, matcher)], dtype=bool)
