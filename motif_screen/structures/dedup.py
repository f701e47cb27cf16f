"""De-duplication: inside a batch of candidates, and against a reference set (training data, database).

The ground truth is pymatgen's ``StructureMatcher`` with CDVAE's settings (``stol=0.5,
angle_tol=10, ltol=0.3``; other options pymatgen's defaults: primitive cell, volume scaling, no
supercells), so our uniqueness and novelty numbers compare with CDVAE's. ``StructureMatcher.fit``
costs 5-40 ms per pair, so these keep 10,000 × 10,000 tractable without changing any answer:

* **exact pre-filter** — the matcher never matches different reduced compositions, so structures
  are grouped by it and only pairs inside a group are compared (the canonical fingerprint
  costs a spglib call per structure, more than it saves here);
* **sure matches first** — a vectorised check on greedy-reduced cells (no Niggli reduction): a
  signed axis permutation and translation under which the two cells and all same-species sites
  coincide within a quarter of the matcher's tolerances implies the matcher matches too;
* **reduce once** — each structure's primitive, Niggli-reduced cell (public pymatgen calls, the
  matcher's order) is computed at most once, lazily, rescaled to 1 Å³/atom (every test the
  matcher makes is scale-free) and kept as arrays;
* **decide by the matcher's own rules** (:func:`_decide`) — the same lattice mappings, anchor
  translations and fractional pre-filter as ``StructureMatcher._strict_match``, vectorised over
  all of them: "same" when one trial passes with margin and its site assignment is forced,
  "different" when no lattice mapping, site bijection and choice of periodic images keeps every
  site within the tolerance of the mean displacement (the matcher's criterion, whatever
  assignment and translation it picks); only pairs left undecided (17 of the 212 pairs that reach
  this step among 987 generated perov-5 cells) go to ``fit(..., skip_structure_reduction=True)``.
  The tests check every shortcut against ``fit`` on pairs that straddle the tolerance.

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
    "ReferenceSet",
    "default_matcher",
    "duplicate_of",
    "novel_mask",
    "reference_matches",
    "unique_indices",
]

CDVAE_MATCHER_SETTINGS = {"stol": 0.5, "angle_tol": 10, "ltol": 0.3}
MOLECULE_DISTANCE_TOL = 0.1  # Å, largest difference of any sorted interatomic distance


def default_matcher():
    """``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)`` — CDVAE's evaluation settings."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**CDVAE_MATCHER_SETTINGS)


def _is_periodic(structure) -> bool:
    return hasattr(structure, "lattice")


def _group_key(structure) -> tuple:
    """Only structures with equal keys can match: the reduced composition (what the matcher checks first)."""
    if not _is_periodic(structure) or not structure.is_ordered:
        return formula_key(structure), _is_periodic(structure)
    counts: dict[str, int] = {}
    for site in structure:  # cheaper than Composition.reduced_formula, same grouping for ordered sites
        label = str(site.specie)
        counts[label] = counts.get(label, 0) + 1
    divisor = math.gcd(*counts.values())
    return tuple(sorted((label, count // divisor) for label, count in counts.items())), True


_SIGNED_PERMUTATIONS = np.array(
    [
        np.eye(3)[list(p)] * np.array(signs)[:, None]
        for p in itertools.permutations(range(3))
        for signs in itertools.product((1, -1), repeat=3)
    ]
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


class _Options:
    """The matcher plus what the shortcuts need to know about it, read once through its public ``as_dict``."""

    __slots__ = ("angle_tol", "ltol", "matcher", "plain", "primitive_cell", "stol")

    def __init__(self, matcher):
        settings = matcher.as_dict()
        self.matcher = matcher
        # the shortcuts mirror pymatgen's default options only; anything else goes straight to fit()
        self.plain = (
            settings["comparator"]["@class"] == "SpeciesComparator"
            and not settings["attempt_supercell"]
            and not settings["allow_subset"]
            and bool(settings["scale"])
            and not settings["ignored_species"]
        )
        self.primitive_cell = bool(settings["primitive_cell"])
        self.stol, self.ltol, self.angle_tol = settings["stol"], settings["ltol"], settings["angle_tol"]


class _Prepared:
    """A structure plus its lazily computed matcher-ready forms (group key, reduced cell, fast-check arrays)."""

    __slots__ = ("_cell", "_fast", "_ready", "key", "structure")

    def __init__(self, structure):
        self.structure = structure
        self.key = _group_key(structure)
        self._ready = None
        self._cell = None
        self._fast = None

    def ready(self, primitive_cell: bool = True):
        """The cell ``StructureMatcher`` compares: Niggli-reduced, then primitive (public pymatgen calls, same
        order as the matcher's own reduction); for molecules, the sorted interatomic distances."""
        if self._ready is None:
            s = self.structure
            if _is_periodic(s):
                from pymatgen.core import Structure

                reduced = s.get_reduced_structure(reduction_algo="niggli")
                if primitive_cell and self._formula_units() > 1:  # one formula unit: primitive already
                    reduced = reduced.get_primitive_structure()
                self._ready = reduced if type(reduced) is Structure else Structure.from_sites(reduced)
            else:
                coords = np.asarray(s.cart_coords)
                d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
                self._ready = np.sort(d[np.triu_indices(len(coords), 1)])
        return self._ready

    def _formula_units(self) -> int:
        if isinstance(self.key[0], tuple):  # ordered: the key holds the reduced counts
            return len(self.structure) // sum(count for _, count in self.key[0])
        return int(self.structure.composition.get_reduced_composition_and_factor()[1])

    def cell(self, primitive_cell: bool = True) -> _Cell:
        if self._cell is None:
            self._cell = _Cell(self.ready(primitive_cell))
        return self._cell

    def fast(self):
        """(reduced basis scaled to 1 Å³/atom, fractional coords in it, species labels)."""
        if self._fast is None:
            s = self.structure
            basis = _greedy_reduce(s.lattice.matrix)
            frac = np.asarray(s.cart_coords) @ np.linalg.inv(basis)
            basis = basis / (abs(np.linalg.det(basis)) / len(s)) ** (1 / 3)
            self._fast = (basis, frac - np.floor(frac), np.array([str(site.specie) for site in s]))
        return self._fast


def _sure_match(a: _Prepared, b: _Prepared, options) -> bool:
    """True only if the two structures certainly match under ``matcher`` (see module docstring)."""
    if len(a.structure) != len(b.structure):
        return False
    basis_a, frac_a, spec_a = a.fast()
    basis_b, frac_b, spec_b = b.fast()
    if sorted(spec_a) != sorted(spec_b):
        return False
    ltol, angle_tol, stol = (FAST_FRACTION * t for t in (options.ltol, options.angle_tol, options.stol))
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
        one_to_one = (
            np.all(np.diff(one_to_one, axis=-1) > 0, axis=-1) if one_to_one.shape[-1] > 1 else np.ones_like(good)
        )
        good &= one_to_one & (dist.min(axis=-1).max(axis=-1) <= stol)
        if not good.any():
            return False
    return bool(good.any())


MAX_ASSIGNMENTS = 120  # site bijections the sure-mismatch check may enumerate (5! ; ABX3 needs 3! = 6):
# at 7! = 5,040 two 7-atom one-element cells built ~20 GB of arrays and took ~50 s, where fit() takes 0.04 s
MAX_ARRAY = 2_000_000  # elements: pairs whose shortcut arrays would be larger go straight to fit()
_MARGIN = 1e-6  # relative safety margin on every tolerance a shortcut decides by


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
    return np.array(rows)


def _angle_matrix(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    lu, lv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip((u @ v.T) / lu[:, None] / lv[None, :], -1, 1)))


def _parameters(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths and angles (alpha, beta, gamma in degrees) of the bases ``m[..., 3, 3]`` (rows)."""
    lengths = np.linalg.norm(m, axis=-1)
    unit = m / lengths[..., None]
    cos = np.stack(
        [
            np.sum(unit[..., 1, :] * unit[..., 2, :], -1),
            np.sum(unit[..., 0, :] * unit[..., 2, :], -1),
            np.sum(unit[..., 0, :] * unit[..., 1, :], -1),
        ],
        -1,
    )
    return lengths, np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _metric(lengths: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Metric tensors (K, 3, 3) of the lattices with these parameters (what ``Lattice.from_parameters`` builds)."""
    ca, cb, cg = np.cos(np.radians(angles)).T
    a, b, c = lengths.T
    return np.stack(
        [
            np.stack([a * a, a * b * cg, a * c * cb], -1),
            np.stack([a * b * cg, b * b, b * c * ca], -1),
            np.stack([a * c * cb, b * c * ca, c * c], -1),
        ],
        -2,
    )


def _images(reach: np.ndarray, recip: np.ndarray) -> np.ndarray:
    """Integer shifts that hold every lattice vector within ``reach`` of a wrapped difference in [-1/2, 1/2]^3."""
    kmax = np.ceil(0.5 + (np.atleast_1d(reach)[:, None] * np.atleast_2d(recip)).max(axis=0)).astype(int)
    return np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in kmax], indexing="ij"), -1).reshape(-1, 3)


class _Cell:
    """What the matcher's search depends on, for one reduced cell rescaled to 1 Å³ per atom.

    The matcher rescales both cells of a pair to a common volume and every test it makes is a
    ratio of lengths, an angle, or a distance in units of ``(V/n)^(1/3)``: rescaling each cell
    once, to unit volume per atom, changes none of them and moves all the per-structure work
    out of the pair loop.
    """

    __slots__ = ("_points", "_radius", "angles", "cart", "frac", "lattice", "lengths", "n", "ordered", "species")

    def __init__(self, structure):
        self.n = len(structure)
        lattice = np.array(structure.lattice.matrix, dtype=float)
        self.lattice = lattice * (self.n / abs(np.linalg.det(lattice))) ** (1 / 3)
        self.frac = np.array(structure.frac_coords, dtype=float)
        self.cart = self.frac @ self.lattice
        self.ordered = structure.is_ordered
        self.species = np.array([str(sp) for sp in structure.species_and_occu])
        self.lengths, self.angles = _parameters(self.lattice)
        self._points, self._radius = None, 0.0

    def points(self, radius: float):
        """Non-zero lattice vectors no longer than ``radius``: integer coefficients, Cartesian, lengths."""
        if radius > self._radius:
            self._radius = 1.25 * radius
            grid = _images(np.array([self._radius]), np.linalg.norm(np.linalg.inv(self.lattice), axis=0)[None])
            cart = grid @ self.lattice
            dist = np.linalg.norm(cart, axis=1)
            keep = (dist <= self._radius) & (dist > 0)
            self._points = grid[keep], cart[keep], dist[keep]
        frac, cart, dist = self._points
        keep = dist <= radius
        return frac[keep], cart[keep], dist[keep]


def _mappings(a: _Cell, b: _Cell, ltol: float, atol: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Bases of lattice ``a`` that ``Lattice.find_all_mappings`` would match to ``b``'s basis (unimodular ones).

    Returns (K, 3, 3) Cartesian bases — a superset of pymatgen's, every tolerance widened by
    ``_MARGIN`` — and a (K,) mask of those inside pymatgen's set with the margin to spare; ``None``
    when there are too many candidates to check.
    """
    radius = b.lengths.max() * (1 + ltol) * (1 + _MARGIN)
    frac, cart, dist = a.points(radius)
    ratio = dist[:, None] / b.lengths[None, :]
    hi, lo = 1 + ltol, 1 / (1 + ltol)
    loose = (ratio < hi * (1 + _MARGIN)) & (ratio > lo * (1 - _MARGIN))
    sure = (ratio < hi * (1 - _MARGIN)) & (ratio > lo * (1 + _MARGIN))
    picks = [np.flatnonzero(loose[:, axis]) for axis in range(3)]
    if not all(len(p) for p in picks):
        return np.zeros((0, 3, 3)), np.zeros(0, dtype=bool)
    pa, pb, pc = picks
    alpha, beta, gamma = b.angles
    off_g = np.abs(_angle_matrix(cart[pa], cart[pb]) - gamma)[:, :, None]
    off_a = np.abs(_angle_matrix(cart[pb], cart[pc]) - alpha)[None, :, :]
    off_b = np.abs(_angle_matrix(cart[pa], cart[pc]) - beta)[:, None, :]
    i, j, k = np.nonzero((off_g < atol + _MARGIN) & (off_a < atol + _MARGIN) & (off_b < atol + _MARGIN))
    if len(i) > MAX_ARRAY // 9:
        return None
    det = np.round(np.linalg.det(np.stack([frac[pa[i]], frac[pb[j]], frac[pc[k]]], axis=1).astype(float)))
    keep = np.abs(det) == 1
    angles_sure = np.maximum(np.maximum(off_g[i, j, 0], off_a[0, j, k]), off_b[i, 0, k]) < atol - _MARGIN
    robust = sure[pa[i], 0] & sure[pb[j], 1] & sure[pc[k], 2] & angles_sure
    mats = np.stack([cart[pa[i]], cart[pb[j]], cart[pc[k]]], axis=1)
    return mats[keep], robust[keep]


def _decide(a: _Cell, b: _Cell, stol: float, ltol: float, atol: float) -> bool | None:
    """``StructureMatcher.fit(a, b, skip_structure_reduction=True)`` where that is certain, else ``None``.

    The matcher answers "same" iff, for some lattice mapping and some anchor translation it
    tries, (1) every site of ``b`` lies in a fractional box of half-width ``2r/d`` around a
    same-species site of ``a`` and (2) the optimal site assignment, after removing the mean
    displacement, moves no site more than ``r = stol·(V/n)^(1/3)``, distances in the lattice
    whose parameters average the two. "Same" is certain when one mapping and translation pass
    both with margin, each site's nearest partner distinct and unambiguous (so the assignment
    is forced) and nearer than the image search the matcher does can miss. "Different" is
    certain when no mapping passes (1) for any anchor together with (2) relaxed to any site
    bijection and any choice of periodic images (:func:`_surely_apart`). Anything else: ``None``.
    """
    n = b.n
    if not (a.ordered and b.ordered) or a.n != n or sorted(a.species) != sorted(b.species):
        return None
    mappings = _mappings(a, b, ltol, atol)
    if mappings is None:
        return None
    mats, robust = mappings
    if not len(mats):
        return False
    if len(mats) * n * n * n * 3 > MAX_ARRAY:
        return None
    len1, ang1 = _parameters(mats)
    metric = _metric((len1 + b.lengths) / 2, (ang1 + b.angles) / 2)  # (K, 3, 3)
    volume = np.sqrt(np.clip(np.linalg.det(metric), 1e-12, None))
    r = stol * (volume / n) ** (1 / 3)  # (K,)
    recip = np.sqrt(np.diagonal(np.linalg.inv(metric), axis1=-2, axis2=-1))  # (K, 3): 1 / interplanar spacings
    frac_tol = (2 * recip * r[:, None])[:, None, None, None, :]
    chol = np.linalg.cholesky(metric)  # fractional row f -> f @ chol has the lattice length of f

    frac1 = a.cart[None] @ np.linalg.inv(mats)  # a's sites in each mapped basis (K, n, 3)
    compatible = b.species[:, None] == a.species[None, :]  # (n_b, n_a)
    anchor = int(np.argmin(compatible.sum(axis=1)))  # the matcher's anchor: first site of b's rarest species
    targets = np.flatnonzero(compatible[anchor])
    shift = frac1[:, targets] - b.frac[anchor]  # (K, U, 3)
    diff = frac1[:, None, None, :, :] - (b.frac[None, None, :, None, :] + shift[:, :, None, None, :])
    diff -= np.round(diff)  # (K, U, n_b, n_a, 3)
    offset = np.abs(diff)
    box_loose = (np.all(offset < frac_tol * (1 + _MARGIN), -1) & compatible).any(-1).all(-1)  # (K, U)
    possible = box_loose.any(axis=1)
    if not possible.any():
        return False
    box_sure = (np.all(offset < frac_tol * (1 - _MARGIN), -1) & compatible).any(-1).all(-1)
    ks, us = np.nonzero(robust[:, None] & box_sure)
    if len(ks) and _certain_match(diff[ks, us], compatible, chol[ks], recip[ks], r[ks]):
        return True
    return False if _surely_apart(frac1[possible], a.species, b, chol[possible], recip[possible], r[possible]) else None


class _ImageLengths:
    """Squared lengths |(f + s) @ chol|² of fractional differences f shifted by every image s, in
    bases ``chol`` (K, 3, 3), as f G f + 2 f G s + s G s with G = chol cholᵀ: the (..., M, 3) image
    vectors are never built (what made the shortcuts slow) and s G s is computed once per basis."""

    def __init__(self, chol: np.ndarray, images: np.ndarray):
        self.metric = chol @ np.swapaxes(chol, -1, -2)  # (K, 3, 3)
        self.images = images.astype(float)  # (M, 3)
        self.image_sq = np.einsum("mi,kij,mj->km", self.images, self.metric, self.images)  # (K, M)

    def __call__(self, frac: np.ndarray, which: np.ndarray) -> np.ndarray:
        """(C, ..., M) for ``frac`` (C, ..., 3) in the bases ``which`` (C,) (indices into the K bases)."""
        fg = np.einsum("c...i,cij->c...j", frac, self.metric[which])
        image_sq = self.image_sq[which].reshape(len(which), *(1,) * (frac.ndim - 2), -1)
        return (fg * frac).sum(-1)[..., None] + 2 * fg @ self.images.T + image_sq


def _certain_match(diff, compatible, chol, recip, r) -> bool:
    """Whether one of these (mapping, translation) trials certainly gives the matcher a match (see ``_decide``).

    ``diff`` (C, n_b, n_a, 3): wrapped fractional offsets. Below ``reach`` the nearest image found is exact,
    the matcher's own 27-image search in an LLL basis finds it too (an LLL basis has interplanar
    spacings of at least λ1/2^1.5, λ1 bounded below by the smallest Gram–Schmidt length), and its
    fractional pre-filter (2r per interplanar spacing) lets it through.
    """
    # cheap screen (unshifted offsets only): trials that look hopeless are skipped, which keeps the answer sound
    plain = np.where(compatible, np.linalg.norm(diff @ chol[:, None], axis=-1), np.inf)  # (C, n_b, n_a)
    nearest = plain.argmin(-1)
    moved = np.take_along_axis(diff, nearest[..., None, None], axis=2)[:, :, 0] @ chol  # (C, n_b, 3)
    hopeful = np.linalg.norm(moved - moved.mean(axis=1, keepdims=True), axis=-1).max(axis=1) < 1.5 * r
    if not hopeful.any():
        return False
    diff, chol, recip, r = diff[hopeful], chol[hopeful], recip[hopeful], r[hopeful]
    shortest = np.diagonal(chol, axis1=-2, axis2=-1).min(axis=-1)  # ≤ the shortest lattice vector
    reach = np.minimum(2 * r, shortest / 2**1.5) * (1 - _MARGIN)
    images = _images(reach, recip)
    keep = max(1, MAX_ARRAY // (diff[0].size * len(images)))  # checking fewer trials is still sound
    diff, chol, r, reach = diff[:keep], chol[:keep], r[:keep], reach[:keep]
    d2 = _ImageLengths(chol, images)(diff, np.arange(len(diff)))  # (C, n_b, n_a, M)
    best = d2.argmin(-1)  # (C, n_b, n_a)
    vectors = (diff + images[best]) @ chol[:, None]  # the nearest image of each offset, Cartesian
    dist = np.where(
        compatible, np.sqrt(np.clip(np.take_along_axis(d2, best[..., None], axis=3)[..., 0], 0, None)), np.inf
    )
    order = np.sort(dist, axis=-1)
    rho = order[..., 0]
    second = order[..., 1] if dist.shape[-1] > 1 else np.full_like(rho, np.inf)
    partner = dist.argmin(-1)  # (C, n_b)
    ok = np.all((rho < reach[:, None]) & (second - rho > _MARGIN), axis=1)
    ok &= np.all(np.diff(np.sort(partner, axis=1), axis=1) > 0, axis=1)  # a bijection: the assignment is forced
    chosen = np.take_along_axis(vectors, partner[..., None, None], axis=2)[:, :, 0]  # (C, n_b, 3)
    spread = np.linalg.norm(chosen - chosen.mean(axis=1, keepdims=True), axis=-1).max(axis=1)
    return bool(np.any(ok & (spread < r * (1 - _MARGIN))))


def _surely_apart(frac1, species1, b: _Cell, chol, recip, r) -> bool:
    """True if no mapping, species-preserving bijection and choice of lattice images keeps every site
    within r of the mean displacement (pairs more than 2r apart rule a bijection out first)."""
    n = b.n
    if n < 2:
        return False
    sigma = _site_assignments(list(species1), list(b.species))
    if sigma is None:
        return False
    reach = 2 * r * (1 + _MARGIN)
    first, second = np.triu_indices(n, 1)
    if len(frac1) * len(sigma) * len(first) * 3 > MAX_ARRAY:
        return False
    images = _images(reach, recip)
    image_cart = images[None].astype(float) @ chol  # (K, M, 3)
    image_lengths = _ImageLengths(chol, images)
    displacement = frac1[:, sigma] - b.frac[None, None]  # (K, S, n, 3)
    # every pair of sites at once (K, S, P, 3); bounds first: a lattice vector is at least |f_l|
    # interplanar spacings long, and the unshifted difference is one candidate image
    pair = displacement[:, :, first] - displacement[:, :, second]
    pair -= np.round(pair)
    alive = ~((np.abs(pair) / recip[:, None, None, :]).max(axis=-1) > reach[:, None, None]).any(axis=-1)  # (K, S)
    if not alive.any():
        return True
    for p in range(len(first)):  # then the exact image test, pair by pair, on what is still alive
        k, s = np.nonzero(alive)
        pair_cart = pair[k, s, p][:, None, :] @ chol[k]  # (c, 1, 3)
        near = (pair_cart[:, 0] ** 2).sum(-1) <= reach[k] ** 2
        if not near.all():
            o = ~near
            near[o] = image_lengths(pair[k[o], s[o], p], k[o]).min(-1) <= reach[k[o]] ** 2
        alive[k, s] = near
        if not alive.any():
            return True
    k, s = np.nonzero(alive)
    step = max(1, MAX_ARRAY // (MAX_IMAGE_CHOICES * n * 3))  # rows per call: bounded arrays
    for start in range(0, len(k), step):
        kk, ss = k[start : start + step], s[start : start + step]
        if _within_spread(displacement[kk, ss], chol[kk], image_cart[kk], reach[kk], r[kk]):
            return False
    return True


MAX_IMAGE_CHOICES = 256  # image combinations per (mapping, bijection) before giving up ("maybe")


def _within_spread(displacement, chol, image_cart, reach, r) -> bool:
    """Whether, for some row a, a choice of lattice images v_i of the displacements ``displacement[a]``
    (n, 3 fractional) has every |v_i - mean(v)| below r[a] — the matcher's criterion for any
    assignment and translation it could pick. Rows are (mapping, bijection) candidates: ``chol`` (A, 3, 3),
    ``image_cart`` (A, M, 3), ``reach`` and ``r`` (A,).

    Translating all images by a lattice vector changes nothing, so v_0 = d_0; every v_i must then lie
    within 2r (``reach``) of v_0, which leaves a few candidates per site to enumerate, for all rows at
    once. True ("maybe") also when there are too many combinations: only a False is used to decide.
    """
    relative = displacement - displacement[:, :1]
    relative -= np.round(relative)
    vectors = np.einsum("ani,aij->anj", relative[:, 1:], chol)[:, :, None, :] + image_cart[:, None]  # (A, n-1, M, 3)
    near = (vectors**2).sum(-1) <= reach[:, None, None] ** 2
    counts = near.sum(-1)  # (A, n-1) candidates per site
    rows = counts.min(axis=1) > 0
    if not rows.any():
        return False
    vectors, near, counts, r = vectors[rows], near[rows], counts[rows], r[rows]
    most = counts.max(axis=0)  # per site, over rows
    if math.prod(int(c) for c in most) > MAX_IMAGE_CHOICES:
        return True
    order = np.argsort(~near, axis=-1, kind="stable")[:, :, : most.max()]  # near images first (A, n-1, cmax)
    combos = np.stack(np.meshgrid(*[np.arange(c) for c in most], indexing="ij"), -1).reshape(-1, len(most))  # (Q, n-1)
    site = np.arange(len(most))
    pick = order[:, site, combos]  # (A, Q, n-1) image index per site
    valid = np.all(combos[None] < counts[:, None, :], axis=-1)  # (A, Q): every pick a near image
    points = vectors[np.arange(len(vectors))[:, None, None], site, pick]  # (A, Q, n-1, 3)
    points = np.concatenate([np.zeros(points.shape[:2] + (1, 3)), points], axis=2)  # v_0 = 0
    spread = np.linalg.norm(points - points.mean(axis=2, keepdims=True), axis=-1).max(axis=-1)
    return bool(np.any(valid & (spread < r[:, None] * (1 + _MARGIN))))


def _first_match(item: _Prepared, others: list[_Prepared], options: _Options) -> int | None:
    """Position of the first of ``others`` that matches ``item``: cheap sure matches are tried on all first."""
    if not others:
        return None
    if isinstance(item.key[0], tuple) and options.plain:  # ordered crystals (the key holds reduced counts)
        sure = next((k for k, other in enumerate(others) if _sure_match(item, other, options)), None)
        if sure is not None:
            return sure
    return next((k for k, other in enumerate(others) if _same(item, other, options)), None)


def _same(a: _Prepared, b: _Prepared, options: _Options) -> bool:
    """``StructureMatcher.fit(a, b)``: ``_decide`` where it is certain, else ``fit`` on the reduced cells."""
    ra, rb = a.ready(options.primitive_cell), b.ready(options.primitive_cell)
    if isinstance(ra, np.ndarray):
        return len(ra) == len(rb) and (len(ra) == 0 or float(np.abs(ra - rb).max()) <= MOLECULE_DISTANCE_TOL)
    if not options.plain:
        return bool(options.matcher.fit(ra, rb, skip_structure_reduction=True))
    if len(ra) != len(rb):
        return False  # different primitive cells never match without supercells
    decided = _decide(a.cell(), b.cell(), options.stol, options.ltol, options.angle_tol)
    if decided is not None:
        return decided
    return bool(options.matcher.fit(ra, rb, skip_structure_reduction=True))


def duplicate_of(structures: Sequence, matcher=None) -> list[int]:
    """For each structure, the index of the first earlier structure it matches (itself if none)."""
    options = _Options(matcher or default_matcher())
    prepared = [_Prepared(s) for s in structures]
    representatives: dict[tuple, list[int]] = {}
    result = []
    for i, item in enumerate(prepared):
        group = representatives.setdefault(item.key, [])
        position = _first_match(item, [prepared[j] for j in group], options)
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
        self._options = _Options(self.matcher)
        self._items = [_Prepared(s) for s in references]
        self._groups: dict[tuple, list[int]] = {}
        for i, item in enumerate(self._items):
            self._groups.setdefault(item.key, []).append(i)

    def __len__(self) -> int:
        return len(self._items)

    def find(self, structure, prepared: _Prepared | None = None) -> int | None:
        """Index of the first reference matching ``structure``, or ``None`` (novel)."""
        prepared = prepared or _Prepared(structure)
        candidates = self._groups.get(prepared.key)
        if not candidates:
            return None
        position = _first_match(prepared, [self._items[j] for j in candidates], self._options)
        return None if position is None else candidates[position]


def reference_matches(structures: Sequence, references, matcher=None) -> list[int | None]:
    """For each structure, the index of a matching reference, or ``None``."""
    refs = references if isinstance(references, ReferenceSet) else ReferenceSet(references, matcher)
    return [refs.find(s) for s in structures]


def novel_mask(structures: Sequence, references, matcher=None) -> np.ndarray:
    """Boolean mask: ``True`` where a structure matches no reference (``references`` may be a ReferenceSet)."""
    return np.array([m is None for m in reference_matches(structures, references, matcher)], dtype=bool)
