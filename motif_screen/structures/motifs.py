"""Geometric motifs: the coordination polyhedron around every site, and labels to filter on.

Method (chosen for speed; measured in the report and ``benchmarks/README.md``):

1. **Who can be a ligand** — the ionic picture ChemEnv uses: cations are coordinated by anions
   and anions by cations. Signs come from the SMACT oxidation-state assignment that the charge
   check finds (so P in a phosphate is a cation, O and N in an oxynitride are both anions); when
   there is none, (semi)metals are cations and nonmetals anions; single-element solids,
   intermetallics and molecules use every neighbour.
2. **How many** — the coordination shell ends at the largest relative gap ``d[k+1] / d[k]`` among
   the eligible neighbour distances within ``(1 + shell_tolerance)`` of the nearest one, so a
   distorted octahedron (bonds spread over 20%) stays six-fold while the next shell is cut off.
3. **Which polyhedron** — ``method="angles"`` (default): the sorted list of ligand–centre–ligand
   angles is compared with that of each ideal polyhedron with the same coordination number
   (rotation- and permutation-invariant, vectorised numpy); ``score = exp(-rms² / 2σ²)`` with
   σ = 15°, 1 = ideal. ``method="lsop"``: pymatgen's ``LocalStructOrderParams`` with the shapes
   and parameters of ``CN_OPT_PARAMS`` (the table behind ``CrystalNN.get_local_order_parameters``);
   same names and the same answers on the reference structures in the tests (87% of the sites
   of 60 perov-5 structures agree; the rest are mostly ambiguous 4-fold sites where pymatgen's
   own parameters tie), but its pure-Python loops cost 30–90 ms per 5-atom perovskite against
   ~2 ms for ``angles`` — too slow for screening 1,000 candidates in well under a minute
   (CrystalNN's neighbour finding alone costs ~24 ms per perovskite here).

Environment names are pymatgen's shape names in snake case, with ``square_planar`` for
"square co-planar" and ``cubic`` for the 8-fold "body-centered cubic", plus four shapes pymatgen
has no order parameter for (``trigonal_prismatic``, ``square_antiprismatic``,
``anticuboctahedral``, ``icosahedral``; ``angles`` method only).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import cast

import numpy as np

from motif_screen.errors import InputError

__all__ = [
    "SiteMotif",
    "MotifFilter",
    "site_motifs",
    "motif_summary",
    "motif_labels",
    "parse_motif_filter",
    "canonical_environment",
    "ENVIRONMENTS",
    "ENVIRONMENT_NAMES",
]

SEARCH_RADIUS = 5.0  # Å; neighbours beyond this are never ligands
SHELL_TOLERANCE = 0.5  # the shell may extend to (1 + this) × nearest eligible distance
MAX_GENERIC_CN = 24
SUMMARY_VERSION = 1

# our name -> (coordination number, pymatgen CN_OPT_PARAMS name); the fixed, documented vocabulary
ENVIRONMENTS: dict[str, tuple[int, str | None]] = {
    "isolated": (0, None),
    "single_bond": (1, None),
    "linear": (2, "linear"),
    "bent_150": (2, "bent 150 degrees"),
    "bent_120": (2, "bent 120 degrees"),
    "water_like": (2, "water-like"),
    "l_shaped": (2, "L-shaped"),
    "trigonal_planar": (3, "trigonal planar"),
    "trigonal_non_coplanar": (3, "trigonal non-coplanar"),
    "t_shaped": (3, "T-shaped"),
    "square_planar": (4, "square co-planar"),
    "tetrahedral": (4, "tetrahedral"),
    "rectangular_see_saw": (4, "rectangular see-saw-like"),
    "see_saw": (4, "see-saw-like"),
    "trigonal_pyramidal": (4, "trigonal pyramidal"),
    "pentagonal_planar": (5, "pentagonal planar"),
    "square_pyramidal": (5, "square pyramidal"),
    "trigonal_bipyramidal": (5, "trigonal bipyramidal"),
    "hexagonal_planar": (6, "hexagonal planar"),
    "octahedral": (6, "octahedral"),
    "pentagonal_pyramidal": (6, "pentagonal pyramidal"),
    "hexagonal_pyramidal": (7, "hexagonal pyramidal"),
    "pentagonal_bipyramidal": (7, "pentagonal bipyramidal"),
    "cubic": (8, "body-centered cubic"),
    "hexagonal_bipyramidal": (8, "hexagonal bipyramidal"),
    "cuboctahedral": (12, "cuboctahedral"),
    # shapes pymatgen has no order parameter for; detected by the angle method only
    "trigonal_prismatic": (6, None),
    "square_antiprismatic": (8, None),
    "anticuboctahedral": (12, None),
    "icosahedral": (12, None),
}
_SHAPED_CNS = {cn for cn, _ in ENVIRONMENTS.values() if cn >= 2}
METHODS = ("angles", "lsop")
ANGLE_SIGMA = 15.0  # degrees; rms angle deviation at which the score falls to exp(-1/2)
# coordination numbers without a shape template are named by their count, e.g. "cn9"
ENVIRONMENT_NAMES: tuple[str, ...] = tuple(ENVIRONMENTS) + tuple(
    f"cn{n}" for n in range(2, MAX_GENERIC_CN + 1) if n not in _SHAPED_CNS
)
ALIASES = {
    "oct": "octahedral",
    "octahedron": "octahedral",
    "octahedra": "octahedral",
    "tet": "tetrahedral",
    "tetrahedron": "tetrahedral",
    "tetrahedra": "tetrahedral",
    "square_coplanar": "square_planar",
    "square_co_planar": "square_planar",
    "bcc": "cubic",
    "body_centered_cubic": "cubic",
    "cube": "cubic",
    "cuboctahedron": "cuboctahedral",
    "trigonal": "trigonal_planar",
    "triangular": "trigonal_planar",
    "trigonal_prism": "trigonal_prismatic",
    "square_antiprism": "square_antiprismatic",
    "icosahedron": "icosahedral",
}


@dataclass(frozen=True)
class SiteMotif:
    index: int
    element: str
    environment: str
    ligands: dict[str, int]  # ligand element -> count
    cn: int
    score: float  # order parameter of the winning shape, 1 = ideal; nan when no template
    mean_distance: float = float("nan")

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "element": self.element,
            "environment": self.environment,
            "ligands": dict(sorted(self.ligands.items())),
            "cn": self.cn,
            "score": None if not np.isfinite(self.score) else round(float(self.score), 4),
            "mean_distance": None if not np.isfinite(self.mean_distance) else round(float(self.mean_distance), 4),
        }


def _ring(n: int, z: float = 0.0, phase: float = 0.0) -> list[list[float]]:
    """n unit-circle points at height z (not normalised: callers normalise)."""
    return [[np.cos(phase + 2 * np.pi * k / n), np.sin(phase + 2 * np.pi * k / n), z] for k in range(n)]


def _template_vectors() -> dict[str, np.ndarray]:
    """Ideal ligand directions of every shaped environment (centre at the origin)."""
    t = 1 / np.sqrt(3)
    phi = (1 + np.sqrt(5)) / 2
    bent = lambda deg: [[1, 0, 0], [np.cos(np.radians(deg)), np.sin(np.radians(deg)), 0]]  # noqa: E731
    octa = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
    tetra = [[t, t, t], [t, -t, -t], [-t, t, -t], [-t, -t, t]]
    cubo = (
        [[a, b, 0] for a in (1, -1) for b in (1, -1)]
        + [[a, 0, b] for a in (1, -1) for b in (1, -1)]
        + [[0, a, b] for a in (1, -1) for b in (1, -1)]
    )
    # hcp shell: hexagon of radius sqrt(3) plus eclipsed triangles of radius 1 at z = ±sqrt(2)
    anticubo = (
        [[np.sqrt(3) * x, np.sqrt(3) * y, 0] for x, y, _ in _ring(6)]
        + [[x, y, np.sqrt(2)] for x, y, _ in _ring(3, 0, np.pi / 6)]
        + [[x, y, -np.sqrt(2)] for x, y, _ in _ring(3, 0, np.pi / 6)]
    )
    icosa = (
        [[0, a, b * phi] for a in (1, -1) for b in (1, -1)]
        + [[a, b * phi, 0] for a in (1, -1) for b in (1, -1)]
        + [[b * phi, 0, a] for a in (1, -1) for b in (1, -1)]
    )
    antiprism_z = np.sqrt(2 - (2 * np.sin(np.pi / 8)) ** 2) / 2  # all edges sqrt(2) for unit-radius squares
    shapes = {
        "linear": [[1, 0, 0], [-1, 0, 0]],
        "bent_150": bent(150),
        "bent_120": bent(120),
        "water_like": bent(104.5),
        "l_shaped": bent(90),
        "trigonal_planar": _ring(3),
        "trigonal_non_coplanar": tetra[:3],
        "t_shaped": [[1, 0, 0], [-1, 0, 0], [0, 1, 0]],
        "square_planar": _ring(4),
        "tetrahedral": tetra,
        "rectangular_see_saw": [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 0, 1]],
        "see_saw": [[0, 0, 1], [0, 0, -1], [1, 0, 0], [np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3), 0]],
        "trigonal_pyramidal": _ring(3) + [[0, 0, 1]],
        "pentagonal_planar": _ring(5),
        "square_pyramidal": octa[:5],
        "trigonal_bipyramidal": _ring(3) + [[0, 0, 1], [0, 0, -1]],
        "hexagonal_planar": _ring(6),
        "octahedral": octa,
        "pentagonal_pyramidal": _ring(5) + [[0, 0, 1]],
        "trigonal_prismatic": _ring(3, np.sqrt(3) / 2) + _ring(3, -np.sqrt(3) / 2),
        "hexagonal_pyramidal": _ring(6) + [[0, 0, 1]],
        "pentagonal_bipyramidal": _ring(5) + [[0, 0, 1], [0, 0, -1]],
        "cubic": [[a, b, c] for a in (1, -1) for b in (1, -1) for c in (1, -1)],
        "hexagonal_bipyramidal": _ring(6) + [[0, 0, 1], [0, 0, -1]],
        "square_antiprismatic": _ring(4, antiprism_z) + _ring(4, -antiprism_z, np.pi / 4),
        "cuboctahedral": cubo,
        "anticuboctahedral": anticubo,
        "icosahedral": icosa,
    }
    out = {}
    for name, vectors in shapes.items():
        v = np.asarray(vectors, dtype=float)
        out[name] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _angle_spectrum(unit_vectors: np.ndarray) -> np.ndarray:
    """Sorted ligand–centre–ligand angles in degrees: invariant to rotation and ligand order."""
    cos = np.clip(unit_vectors @ unit_vectors.T, -1.0, 1.0)
    upper = np.triu_indices(len(unit_vectors), 1)
    return np.sort(np.degrees(np.arccos(cos[upper])))


@cache
def _templates_by_cn() -> dict[int, tuple[list[str], np.ndarray]]:
    """cn -> (environment names, stacked angle spectra) for the angle method."""
    grouped: dict[int, tuple[list[str], list[np.ndarray]]] = {}
    for name, vectors in _template_vectors().items():
        names, spectra = grouped.setdefault(len(vectors), ([], []))
        names.append(name)
        spectra.append(_angle_spectrum(vectors))
    return {cn: (names, np.stack(spectra)) for cn, (names, spectra) in grouped.items()}


@cache
def _order_parameters(cn: int):
    """pymatgen's order-parameter calculator and our names for the shapes of one CN (lsop method)."""
    from pymatgen.analysis.local_env import LocalStructOrderParams, cn_opt_params

    by_pmg = {pmg: ours for ours, (n, pmg) in ENVIRONMENTS.items() if n == cn and pmg}
    names: list[str] = []
    types: list[str] = []
    params: list[dict[str, float] | None] = []
    for pmg_name, spec in cn_opt_params.get(cn, {}).items():
        # a row of pymatgen's cn_opt_params.yaml: [order parameter type] or [type, {parameter: value}]
        names.append(by_pmg[pmg_name])
        types.append(cast(str, spec[0]))
        params.append(cast(dict[str, float], spec[1]) if len(spec) > 1 else None)
    return (LocalStructOrderParams(types, parameters=params) if names else None), names


def _classify_lsop(centre: np.ndarray, ligands: np.ndarray, cn: int) -> tuple[str, float]:
    from pymatgen.core.sites import Site

    calculator, names = _order_parameters(cn)
    if calculator is None:
        return f"cn{cn}", float("nan")
    sites = [Site("X", centre)] + [Site("X", p) for p in ligands]
    values = calculator.get_order_parameters(sites, 0, indices_neighs=list(range(1, cn + 1)))
    values = np.array([v if v is not None else -np.inf for v in values], dtype=float)
    best = int(np.argmax(values))
    return names[best], float(values[best])


def _classify_angles(centre: np.ndarray, ligands: np.ndarray, cn: int) -> tuple[str, float]:
    names, spectra = _templates_by_cn()[cn]
    vectors = ligands - centre
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)
    rms = np.sqrt(np.mean((spectra - _angle_spectrum(vectors)) ** 2, axis=1))
    best = int(np.argmin(rms))
    return names[best], float(np.exp(-0.5 * (rms[best] / ANGLE_SIGMA) ** 2))


def _classify(centre: np.ndarray, ligands: np.ndarray, cn: int, method: str) -> tuple[str, float]:
    if cn == 0:
        return "isolated", float("nan")
    if cn == 1:
        return "single_bond", float("nan")
    if cn not in _SHAPED_CNS:
        return f"cn{min(cn, MAX_GENERIC_CN)}", float("nan")
    if method == "lsop":
        return _classify_lsop(centre, ligands, cn)
    return _classify_angles(centre, ligands, cn)


def _neighbours(structure, radius: float):
    """Per site: (neighbour indices, neighbour Cartesian positions, distances)."""
    n = len(structure)
    coords = np.asarray(structure.cart_coords)
    if hasattr(structure, "lattice"):
        centers, points, images, dists = structure.get_neighbor_list(r=radius, exclude_self=True)
        positions = coords[points] + np.asarray(images, dtype=float) @ structure.lattice.matrix
    else:
        d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
        centers, points = np.nonzero((d <= radius) & ~np.eye(n, dtype=bool))
        dists, positions = d[centers, points], coords[points]
    order = np.argsort(centers, kind="stable")
    centers, points, positions, dists = centers[order], points[order], positions[order], dists[order]
    bounds = np.searchsorted(centers, np.arange(n + 1))
    return [(points[a:b], positions[a:b], dists[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _shell_size(distances: np.ndarray, tolerance: float, radius: float) -> int:
    """Number of neighbours in the first shell: cut at the largest relative distance gap."""
    if len(distances) == 0:
        return 0
    window = int(np.searchsorted(distances, distances[0] * (1 + tolerance), side="right"))
    following = np.append(distances[1:], radius)  # past the last neighbour found: at least the radius
    gaps = following[:window] / np.maximum(distances[:window], 1e-8)
    return int(np.argmax(gaps)) + 1  # first maximum: the tighter shell wins ties


def _ion_signs(structure, symbols: list[str]) -> dict[str, int]:
    """+1 cation / -1 anion / 0 either, per element: SMACT assignment first, metal/nonmetal otherwise."""
    from pymatgen.core import Element

    from motif_screen.structures.validity import reduced_counts, smact_assignment

    elements = sorted(set(symbols))
    if len(elements) == 1 or not hasattr(structure, "lattice"):
        return {s: 0 for s in elements}
    key = reduced_counts(structure.composition)
    if key is not None:
        states = smact_assignment(*key)
        if states is not None and any(states):
            return {s: int(np.sign(q)) for s, q in zip(key[0], states)}
    nonmetal = {s: not (Element(s).is_metal or Element(s).is_metalloid) for s in elements}
    if all(nonmetal.values()) or not any(nonmetal.values()):
        return {s: 0 for s in elements}
    return {s: -1 if nonmetal[s] else 1 for s in elements}


def site_motifs(
    structure,
    search_radius: float = SEARCH_RADIUS,
    shell_tolerance: float = SHELL_TOLERANCE,
    method: str = "angles",
) -> list[SiteMotif]:
    """The coordination environment of every site of a ``Structure`` or ``Molecule``."""
    if method not in METHODS:
        raise InputError(f"Unknown motif method {method!r}; choose one of {', '.join(METHODS)}.")
    if len(structure) == 0:
        raise InputError("site_motifs was given a structure with no atoms.")
    symbols = [site.specie.symbol for site in structure]
    signs = _ion_signs(structure, symbols)
    symbols_arr = np.array(symbols)
    sign_arr = np.array([signs[s] for s in symbols])
    coords = np.asarray(structure.cart_coords)
    result = []
    for i, (points, positions, dists) in enumerate(_neighbours(structure, search_radius)):
        centre_sign = sign_arr[i]
        if centre_sign != 0:
            eligible = sign_arr[points] == -centre_sign
        else:
            eligible = np.ones(len(points), dtype=bool)
        positions, dists, ligand_symbols = positions[eligible], dists[eligible], symbols_arr[points][eligible]
        order = np.argsort(dists, kind="stable")
        positions, dists, ligand_symbols = positions[order], dists[order], ligand_symbols[order]
        cn = _shell_size(dists, shell_tolerance, search_radius)
        environment, score = _classify(coords[i], positions[:cn], cn, method)
        result.append(
            SiteMotif(
                index=i,
                element=symbols[i],
                environment=environment,
                ligands=dict(Counter(ligand_symbols[:cn].tolist())),
                cn=cn,
                score=score,
                mean_distance=float(dists[:cn].mean()) if cn else float("nan"),
            )
        )
    return result


def _labels_from_motifs(motifs: list[SiteMotif]) -> list[str]:
    labels = []
    by_element: dict[str, list[SiteMotif]] = {}
    for motif in motifs:
        by_element.setdefault(motif.element, []).append(motif)
    for element in sorted(by_element):
        sites = by_element[element]
        environments = {m.environment for m in sites}
        if len(environments) != 1:
            continue
        environment = environments.pop()
        labels.append(f"{element}:{environment}")
        ligand_sets = {tuple(sorted(m.ligands)) for m in sites}
        if len(ligand_sets) == 1 and (ligands := ligand_sets.pop()):
            labels.append(f"{element}:{environment}:{'+'.join(ligands)}")
    return labels


def motif_labels(structure_or_motifs) -> list[str]:
    """Canonical labels of the motifs shared by EVERY site of an element, for MongoDB equality queries.

    ``"Ti:octahedral"`` when every Ti site is octahedral, plus ``"Ti:octahedral:O"`` when every Ti
    is coordinated by O only (ligand elements joined by ``+`` in alphabetical order, e.g.
    ``"Ti:octahedral:N+O"``, when every Ti site has that same mixed set).
    """
    motifs = structure_or_motifs
    if not (isinstance(motifs, list) and all(isinstance(m, SiteMotif) for m in motifs)):
        motifs = site_motifs(structure_or_motifs)
    return _labels_from_motifs(motifs)


def motif_summary(structure, motifs: list[SiteMotif] | None = None, method: str = "angles") -> dict:
    """JSON-able per-structure summary stored on ``Candidate.motifs``."""
    motifs = site_motifs(structure, method=method) if motifs is None else motifs
    counts: dict[str, dict[str, int]] = {}
    for m in motifs:
        counts.setdefault(m.element, {}).setdefault(m.environment, 0)
        counts[m.element][m.environment] += 1
    return {
        "method": f"gap-shell+{method}",
        "version": SUMMARY_VERSION,
        "labels": _labels_from_motifs(motifs),
        "environments": {el: dict(sorted(env.items())) for el, env in sorted(counts.items())},
        "sites": [m.to_dict() for m in motifs],
    }


@dataclass(frozen=True)
class MotifFilter:
    """ "Every <element> site is <environment> [coordinated only by <ligands>]"."""

    element: str
    environment: str
    ligands: tuple[str, ...] | None = None
    label: str = field(init=False)

    def __post_init__(self):
        label = f"{self.element}:{self.environment}"
        if self.ligands:
            label += ":" + "+".join(self.ligands)
        object.__setattr__(self, "label", label)

    def matches(self, structure_or_labels) -> bool:
        """True if a structure, its motif summary dict, or its label list satisfies the filter."""
        obj = structure_or_labels
        if isinstance(obj, dict):
            labels = obj.get("labels", [])
        elif isinstance(obj, str):
            labels = [obj]
        elif isinstance(obj, (list, tuple, set, frozenset)) and all(isinstance(x, str) for x in obj):
            labels = obj
        else:
            labels = motif_labels(obj)
        return self.label in set(labels)

    def __str__(self) -> str:
        return self.label


def _canonical_symbol(text: str, where: str) -> str:
    from pymatgen.core import Element

    symbol = text.strip()
    symbol = symbol[:1].upper() + symbol[1:].lower()
    if not Element.is_valid_symbol(symbol):
        raise InputError(f"Unknown element {text.strip()!r} in motif filter {where!r}.")
    return symbol


def canonical_environment(text: str, where: str | None = None) -> str:
    """Our environment name for ``text`` (case, spaces, hyphens and common aliases forgiven)."""
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    if key in ALIASES:
        key = ALIASES[key]
    if key not in ENVIRONMENT_NAMES:
        shaped = ", ".join(name for name in ENVIRONMENTS)
        raise InputError(
            f"Unknown coordination environment {text.strip()!r} in motif filter {where or text!r}; "
            f"known: {shaped}, or cnN."
        )
    return key


def parse_motif_filter(text: str) -> MotifFilter:
    """Parse ``"Element:environment[:Ligand[+Ligand...]]"``, e.g. ``"Ir:octahedral:O"``, into a canonical filter."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("Empty motif filter; expected e.g. 'Ti:octahedral:O'.")
    parts = [p.strip() for p in text.strip().split(":")]
    if len(parts) not in (2, 3) or not all(parts):
        raise InputError(f"Motif filter {text!r} must look like 'Element:environment' or 'Element:environment:Ligand'.")
    element = _canonical_symbol(parts[0], text)
    environment = canonical_environment(parts[1], text)
    ligands = None
    if len(parts) == 3:
        ligands = tuple(sorted({_canonical_symbol(p, text) for p in parts[2].split("+")}))
    return MotifFilter(element, environment, ligands)
