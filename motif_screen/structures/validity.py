"""Is a proposed structure physically sensible? The checks shared by generation and screening.

These are CDVAE's validity definitions, so our generation benchmarks compare like with like:
*structural* validity is every interatomic distance (periodic images included) above 0.5 Å and
a non-degenerate cell; *composition* validity is SMACT's rule — some combination of known
oxidation states sums to zero and cations are less electronegative than anions (Pauling test);
single elements and all-metal alloys count as valid. We add a volume-per-atom sanity window,
which catches exploded or collapsed decoder outputs that pass the distance test.

Beyond CDVAE (off unless asked for, so the generation benchmarks keep CDVAE's definition): the
``bonds`` check, no two atoms closer than a fraction of the sum of their covalent radii (Cordero
et al. 2008, pymatgen's table). 0.5 Å lets an S–S pair sit at 0.6 Å; relaxed from there, CHGNet
ends with atoms fused (+8 eV/atom "formation energies"). Screening uses it on candidates and the
local oracle on its relaxed cells (:data:`FUSED_BOND_FRACTION`).

Every check reports ``ok`` and a human-readable ``detail`` so a rejected candidate carries the
reason into the database instead of silently disappearing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache, lru_cache

import numpy as np

from motif_screen.errors import InputError
from motif_screen.limits import MAX_ATOMS_PER_STRUCTURE, MAX_NEIGHBOUR_SEARCH_IMAGES, geometry_problem
from motif_screen.messages import quoted

__all__ = [
    "CheckResult",
    "ValidityReport",
    "check_validity",
    "composition_is_valid",
    "check_composition_text",
    "counts_pass_smact",
    "smact_assignment",
    "reduced_counts",
    "min_interatomic_distance",
    "symmetrize",
    "CHARGE_METHODS",
    "FUSED_BOND_FRACTION",
    "VOLUME_PER_ATOM_RANGE",
    "closest_pair",
]

# Of the sum of two atoms' covalent radii: closer than this, two atoms overlap; a relaxation that
# ends so is not a structure. Of 1,980 CHGNet relaxations of generated ABX3 cells, 50 ended below
# 0.4 (fused, formation energies up to +10 eV/atom) and none between 0.4 and 0.65.
FUSED_BOND_FRACTION = 0.5
VOLUME_PER_ATOM_RANGE = (1.0, 250.0)  # Å³/atom; dense solids ~5 (diamond 5.7), Cs metal ~115
CHARGE_METHODS = ("smact", "pymatgen")
DISTANCE_PROBE = 3.0  # Å: neighbours searched this far beyond min_distance to report the actual minimum
SMACT_MAX_COMBINATIONS = 200_000  # beyond this the rule is not tried exhaustively (very many elements)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return {"ok": bool(self.ok), "detail": self.detail}


@dataclass(frozen=True)
class ValidityReport:
    ok: bool
    checks: dict[str, CheckResult] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        """Names of the failed checks, in the order they were run."""
        return [name for name, result in self.checks.items() if not result.ok]

    @property
    def reason(self) -> str:
        """``invalid:<first failed check>`` or ``""``: the screening decision code."""
        return f"invalid:{self.failed[0]}" if self.failed else ""

    def to_dict(self) -> dict:
        """JSON-able ``{check: {"ok", "detail"}}``, the shape stored on ``Candidate.validity``."""
        return {name: result.to_dict() for name, result in self.checks.items()}


def min_interatomic_distance(structure, probe: float = DISTANCE_PROBE) -> float:
    """Shortest distance between two atoms, periodic images (also of the same atom) included.

    Returns ``inf`` when no pair is closer than ``probe`` Å (a sparse or single-atom cell).
    """
    if hasattr(structure, "lattice"):
        if len(structure) == 0:
            return float("inf")
        _, _, _, distances = structure.get_neighbor_list(r=probe, exclude_self=True)
        return float(distances.min()) if len(distances) else float("inf")
    coords = np.asarray(structure.cart_coords)
    if len(coords) < 2:
        return float("inf")
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    return float(d[np.triu_indices(len(coords), 1)].min())


def _search_images(structure, radius: float) -> int:
    """Atom images a periodic neighbour search within ``radius`` visits: atoms × the cells
    within reach along each axis (cell heights are volume / face area)."""
    matrix = np.asarray(structure.lattice.matrix)
    volume = abs(np.linalg.det(matrix))
    faces = np.linalg.norm(np.cross(matrix[[1, 2, 0]], matrix[[2, 0, 1]]), axis=1)
    reach = np.ceil(radius * faces / volume)
    return int(len(structure) * np.prod(2 * reach + 1))


def _distance_check(structure, min_distance: float) -> CheckResult:
    probe = max(min_distance, DISTANCE_PROBE)
    if hasattr(structure, "lattice") and _search_images(structure, probe) > MAX_NEIGHBOUR_SEARCH_IMAGES:
        # so thin a cell that the search would visit millions of images: no atom can keep
        # min_distance from all of them (the densest packing needs min_distance³/√2 per atom)
        vpa = float(structure.volume) / len(structure)
        if vpa < min_distance**3 / np.sqrt(2):
            return CheckResult(False, f"volume per atom {vpa:.3g} Å³ is too small for atoms {min_distance} Å apart")
        return CheckResult(
            False, "the cell is too thin to search for neighbours (reduce it, e.g. get_reduced_structure())"
        )
    dmin = min_interatomic_distance(structure, probe=probe)
    shown = f"{dmin:.3f} Å" if np.isfinite(dmin) else f"> {probe:.1f} Å"
    ok = dmin >= min_distance
    return CheckResult(ok, f"shortest interatomic distance {shown} ({'>=' if ok else '<'} {min_distance} Å)")


@cache
def _covalent_radius(symbol: str) -> float:
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
    from pymatgen.core import Element

    radius = CovalentRadius.radius.get(symbol)
    return float(radius if radius is not None else Element(symbol).atomic_radius or 1.5)


def closest_pair(structure) -> tuple[float, str]:
    """The smallest ratio of a distance to the sum of the two atoms' covalent radii (periodic
    images included), and the pair it belongs to (``"S-S 0.98 Å"``); ``(inf, "")`` without pairs."""
    symbols = [site.specie.symbol for site in structure]
    radii = np.array([_covalent_radius(el) for el in symbols])
    if hasattr(structure, "lattice"):
        centers, neighbours, _, distances = structure.get_neighbor_list(r=float(2 * radii.max()), exclude_self=True)
    else:
        i, j = np.triu_indices(len(symbols), 1)
        coords = np.asarray(structure.cart_coords)
        centers, neighbours, distances = i, j, np.linalg.norm(coords[i] - coords[j], axis=1)
    if not len(distances):
        return float("inf"), ""
    ratios = distances / (radii[centers] + radii[neighbours])
    k = int(np.argmin(ratios))
    return float(ratios[k]), f"{symbols[centers[k]]}-{symbols[neighbours[k]]} {distances[k]:.2f} Å"


def _bond_check(structure, fraction: float) -> CheckResult:
    ratio, pair = closest_pair(structure)
    ok = ratio >= fraction
    if not pair:
        return CheckResult(True, "no two atoms within reach of a bond")
    return CheckResult(
        ok, f"closest pair {pair}, {ratio:.2f} of their covalent radii ({'>=' if ok else '<'} {fraction})"
    )


def _volume_check(structure, volume_per_atom: tuple[float, float]) -> CheckResult:
    vpa = float(structure.volume) / len(structure)
    lo, hi = volume_per_atom
    ok = lo <= vpa <= hi
    return CheckResult(ok, f"volume per atom {vpa:.2f} Å³ ({'inside' if ok else 'outside'} [{lo}, {hi}])")


def _finite_check(structure) -> CheckResult:
    """Finite numbers inside motif_screen.limits (lattice lengths, fractional coordinates, a cell
    with volume, atom count): garbage such as a 1e300 Å lattice is invalid, named here."""
    problem = geometry_problem(structure)
    if problem:
        return CheckResult(False, problem)
    return CheckResult(True, "coordinates and lattice are finite and inside the limits")


@lru_cache(maxsize=256)
def element_symbol(atomic_number: int) -> str:
    """The element symbol of an atomic number (pymatgen's ``Element.from_Z``, looked up once)."""
    from pymatgen.core.periodic_table import Element

    return Element.from_Z(int(atomic_number)).symbol


@lru_cache(maxsize=256)
def _smact_element(symbol: str) -> tuple[tuple[int, ...], float | None]:
    """(SMACT 2014 oxidation states, Pauling electronegativity) of an element; building a
    ``smact.Element`` reads data files, which dominated the validity check of new formulas."""
    import smact

    element = smact.Element(symbol)
    return tuple(element.oxidation_states_smact14 or ()), element.pauling_eneg


@lru_cache(maxsize=65536)
def smact_assignment(symbols: tuple[str, ...], counts: tuple[int, ...]) -> tuple[int, ...] | None:
    """The first SMACT oxidation-state assignment that is charge neutral and passes the Pauling test.

    Same rule as CDVAE's ``smact_validity`` (oxidation states of SMACT's 2014 table, which is what
    CDVAE's SMACT 2.x called ``oxidation_states``), written against SMACT's element data. ``None``
    when there is none; the motif finder reuses the signs (cation / anion) of a found assignment.
    """
    from smact.screening import pauling_test

    oxidation_states, electronegativities = zip(*(_smact_element(s) for s in symbols))
    if any(not states for states in oxidation_states):
        return None
    if int(np.prod([len(st) for st in oxidation_states])) > SMACT_MAX_COMBINATIONS:
        return None
    electronegativity_list = list(electronegativities)
    # every combination at once, in itertools.product order (the last element varies fastest)
    grids = np.meshgrid(*[np.asarray(st, dtype=np.int64) for st in oxidation_states], indexing="ij")
    combos = np.stack([g.ravel() for g in grids], axis=1)
    for row in np.flatnonzero(combos @ np.asarray(counts, dtype=np.int64) == 0):  # the charge-neutral ones, in order
        states = tuple(int(q) for q in combos[row])
        try:
            pauling_ok = pauling_test(states, electronegativity_list)
        except TypeError:  # missing electronegativity data: SMACT/CDVAE accept
            pauling_ok = True
        if pauling_ok:
            return states
    return None


def _smact_rule(symbols: tuple[str, ...], counts: tuple[int, ...]) -> tuple[bool, str]:
    import smact

    if len(symbols) == 1:
        return True, f"single element {symbols[0]}"
    if all(s in smact.metals for s in symbols):
        return True, "all elements are metals (alloy)"
    states = smact_assignment(symbols, counts)
    if states is None:
        return False, "no charge-balanced oxidation states passing the Pauling electronegativity test"
    return True, "charge balanced as " + " ".join(f"{s}{q:+d}" for s, q in zip(symbols, states))


def _reduce_integer_counts(counts: dict[str, int]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Sorted symbols and counts divided by their gcd (zero counts dropped)."""
    items = sorted((symbol, int(n)) for symbol, n in counts.items() if n)
    factor = math.gcd(*(n for _, n in items)) or 1
    return tuple(s for s, _ in items), tuple(n // factor for _, n in items)


def counts_pass_smact(counts: dict[str, int]) -> bool:
    """The SMACT rule of :func:`composition_is_valid` for integer element counts (symbol -> count),
    without building a pymatgen Composition: the decoder asks it for thousands of formulas."""
    symbols, reduced = _reduce_integer_counts(counts)
    return bool(symbols) and _smact_rule(symbols, reduced)[0]


def reduced_counts(composition) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """Sorted symbols and integer counts of the reduced composition; ``None`` if not integer."""
    from pymatgen.core import Composition

    comp = composition if isinstance(composition, Composition) else Composition(composition)
    amounts: dict[str, float] = {}
    for species, amount in comp.items():  # per element (two oxidation states of one element count together)
        amounts[species.symbol] = amounts.get(species.symbol, 0.0) + amount
    if amounts and all(abs(n - round(n)) < 1e-8 for n in amounts.values()):  # integer counts: reduce by their gcd
        return _reduce_integer_counts({symbol: round(n) for symbol, n in amounts.items()})
    reduced, _ = comp.get_reduced_composition_and_factor()  # fractional amounts: pymatgen's own reduction
    if any(abs(v - round(v)) > 1e-6 for v in reduced.values()):
        return None
    items = sorted((el.symbol, int(round(n))) for el, n in reduced.items())
    return tuple(s for s, _ in items), tuple(n for _, n in items)


@lru_cache(maxsize=65536)
def _pymatgen_rule(formula: str) -> tuple[bool, str]:
    from pymatgen.core import Composition

    comp = Composition(formula)
    if len(comp.elements) == 1 or all(el.is_metal for el in comp.elements):
        return True, "single element or all-metal alloy"
    guesses = comp.oxi_state_guesses(max_sites=-50)
    if guesses:
        assignment = " ".join(f"{el}{q:+g}" for el, q in guesses[0].items())
        return True, f"charge balanced as {assignment}"
    return False, "pymatgen finds no charge-balanced oxidation states"


def composition_is_valid(composition, method: str = "smact") -> tuple[bool, str]:
    """Charge balance of a composition (pymatgen ``Composition``, formula string or structure).

    ``method="smact"`` is CDVAE's composition validity (fast, cached per reduced formula);
    ``"pymatgen"`` uses ``Composition.oxi_state_guesses`` (ICSD-frequency oxidation states).
    """
    from pymatgen.core import Composition

    if method not in CHARGE_METHODS:
        raise InputError(f"Unknown charge-balance method {method!r}; choose one of {', '.join(CHARGE_METHODS)}.")
    if hasattr(composition, "composition"):
        composition = composition.composition
    comp = Composition(composition)
    too_many = _atoms_problem(comp)
    if too_many:
        return False, too_many
    key = reduced_counts(comp)
    if key is None:
        return False, f"non-integer composition {comp.formula}"
    if method == "pymatgen":
        return _pymatgen_rule(comp.reduced_formula)
    return _smact_rule(*key)


def _atoms_problem(comp) -> str:
    """Why a composition cannot be one structure's (NaN or more atoms than the limit), or ``""``."""
    total = comp.num_atoms
    if not math.isfinite(total) or total > MAX_ATOMS_PER_STRUCTURE:
        return f"{total:g} atoms, more than the {MAX_ATOMS_PER_STRUCTURE:,} a structure may have"
    return ""


def check_composition_text(text) -> str:
    """A chemical system (``"Ba-Ti-O"``) or formula (``"BaTiO3"``) as the user typed it, checked:
    known element symbols, positive amounts, at most ``MAX_ATOMS_PER_STRUCTURE`` atoms; returns
    the stripped text, or raises one InputError naming what is wrong."""
    from pymatgen.core import Composition, Element

    stripped = str(text).strip()
    hint = "give a chemical system (Ba-Ti-O) or a formula (BaTiO3)"
    if not stripped:
        raise InputError(f"the composition is empty; {hint}.")
    if len(stripped) > 200:
        raise InputError(f"the composition {quoted(stripped, 60)} is too long for a formula; {hint}.")
    if "-" in stripped:
        symbols = [s.strip() for s in stripped.split("-") if s.strip()]
        if not symbols:
            raise InputError(f"{quoted(stripped)} names no element; {hint}.")
        for symbol in symbols:
            if not Element.is_valid_symbol(symbol):
                raise InputError(f"{quoted(symbol)} in {quoted(stripped)} is not a chemical element; {hint}.")
        return stripped
    try:
        comp = Composition(stripped)
    except Exception:  # pymatgen raises ValueError, KeyError... for what it cannot read
        raise InputError(f"{quoted(stripped)} is not a formula pymatgen can read; {hint}.") from None
    if not len(comp):
        raise InputError(f"{quoted(stripped)} has no atoms; {hint}.")
    problem = _atoms_problem(comp)
    if problem:
        raise InputError(f"{quoted(stripped)} asks for {problem}.")
    return stripped


def check_validity(
    structure,
    min_distance: float = 0.5,
    check_charge: bool = True,
    volume_per_atom: tuple[float, float] = VOLUME_PER_ATOM_RANGE,
    charge_method: str = "smact",
    min_bond_fraction: float | None = None,
) -> ValidityReport:
    """Run the validity checks on one structure; molecules get the distance checks only.

    Checks run in order ``finite`` (finite numbers inside :mod:`motif_screen.limits`),
    ``distance``, ``bonds`` (only with ``min_bond_fraction``), ``volume``, ``charge``; later
    checks are skipped (absent) once the geometry is unusable, so ``report.reason`` names the
    root cause.
    """
    checks: dict[str, CheckResult] = {}
    if len(structure) == 0:
        return ValidityReport(False, {"finite": CheckResult(False, "structure has no atoms")})
    checks["finite"] = _finite_check(structure)
    if checks["finite"].ok:
        checks["distance"] = _distance_check(structure, min_distance)
        if min_bond_fraction is not None and checks["distance"].ok:
            checks["bonds"] = _bond_check(structure, min_bond_fraction)
        if hasattr(structure, "lattice"):
            checks["volume"] = _volume_check(structure, volume_per_atom)
            if check_charge:
                ok, detail = composition_is_valid(structure.composition, charge_method)
                checks["charge"] = CheckResult(ok, detail)
    return ValidityReport(all(c.ok for c in checks.values()), checks)


def symmetrize(structure, symprec: float = 0.1, primitive: bool = True):
    """The spglib-idealised structure: positions and lattice snapped to the symmetry found at ``symprec``.

    ``primitive=True`` returns the standard primitive cell (same atom count as a primitive input);
    ``False`` the conventional refined cell.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    if not hasattr(structure, "lattice"):
        raise InputError("symmetrize needs a periodic structure, got a molecule.")
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        result = sga.get_primitive_standard_structure() if primitive else sga.get_refined_structure()
    except Exception as exc:
        raise InputError(
            f"spglib cannot find the symmetry of {structure.composition.reduced_formula} at symprec={symprec} ({exc})."
        ) from exc
    if result is None or len(result) == 0:
        raise InputError(
            f"spglib cannot find the symmetry of {structure.composition.reduced_formula} at symprec={symprec}."
        )
    return result
