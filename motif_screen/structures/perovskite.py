"""Would a chemist accept an ABX3 formula as a perovskite? Common oxidation states and a size rule.

:func:`perovskite_screen` answers ``(ok, why, details)`` for one formula, in three steps; the first
that fails is the reason (``details["rule"]``):

1. ``"formula"`` — two cations A, B (one each) and three anions X per formula unit. The anions are
   the elements of :data:`ANION_STATES`, always in their usual state (O2-, N3-, F-, S2-, Cl-,
   Se2-, Br-, I-); mixed anions (``ABO2N``) are allowed, as in perov-5.
2. ``"oxidation"`` — A and B take *common* positive oxidation states that balance the anions.
   "Common" is measured, not curated: a state is common when it is at least
   :data:`COMMON_STATE_SHARE` (5 %) of an element's ICSD reports, from SMACT's ICSD-2024 counts
   (``smact.utils.oxidation.ICSD24OxStatesFilter``, states with at least 3 reports; the same list
   as its ``filter(consensus=3, commonality=5)``). Why not the alternatives:
   ``Element.icsd_oxidation_states`` keeps every state ever seen (Ti2+, Mo3+, Te2+) and the
   SMACT-2014 list of CDVAE's rule is wider still — that is how SiGeF3 (Si+4, Ge-1), TaTeF3 and
   YZrF3 passed; pymatgen's hand-made ``common_oxidation_states`` misses states that hold
   textbook perovskites together (Mn3+ in LaMnO3, Ni3+ in LaNiO3, V3+/V4+ in LaVO3/SrVO3).
   Why 5 %: on the 576 experimentally classified ABX3 of Bartel et al. (below) this whole screen
   is right about 86 % of them with a 10 % cut (SMACT's "medium"; it drops Ti3+, Nb4+, Mo4+,
   Cr2+, Pb4+ and with them LaTiO3, SrNbO3, SrMoO3, KCrF3, BaPbO3), 91.0 % with 5 %, 91.8 % with
   2 %, precision 92-93 % throughout; 5 % keeps those states and still drops the rare ones.
3. ``"radius"`` / ``"size"`` — Bartel's tolerance factor (C. J. Bartel et al., "New tolerance
   factor to predict the stability of perovskite oxides and halides", Sci. Adv. 5, eaav0693
   (2019))::

       tau = r_X / r_B - n_A * (n_A - (r_A / r_B) / ln(r_A / r_B)),   perovskite if tau < 4.18

   from Shannon ionic radii (pymatgen's table; R. D. Shannon, Acta Cryst. A32, 751 (1976)) of A at
   CN 12 and of B and X at CN 6, with n_A the oxidation state of A. As in Bartel's own code, when
   an ion has no radius at that coordination number the tabulated one nearest to it is used
   (Bi3+ and Y3+ have none at CN 12, N3- none at CN 6; ``details`` records the CN used), and
   where a radius depends on spin the high-spin one is taken for d4-d7 ions, the low-spin one
   otherwise. An ion with no Shannon radius at all (Ru2+, Hf3+, Sn2+ ...) leaves the formula
   unjudged, hence not admitted (rule ``"radius"``). tau needs r_A > r_B: A is the larger
   cation. Both assignments (either cation on A) and every balancing pair of common oxidation
   states are tried; the formula is admitted when one of them passes, and ``details`` describes
   that one (or, when none passes, the closest).

   tau (92 % accuracy on Bartel's 576 compounds) replaces Goldschmidt's
   t = (r_A + r_X) / (sqrt 2 (r_B + r_X)) (74 %), whose failures are mostly false positives. Two
   guards remain. n_A <= :data:`N_A_MAX` = 3: the A cations tau was fitted on are +1..+3, and for
   n_A >= 4 the n_A^2 term makes tau negative for almost any radii (it would admit Mo6+ B3+ N3 or
   Nb5+ Si4+ N3). Goldschmidt's lower bound t > :data:`T_MIN` = 0.825 (the bound Bartel et al.
   fitted for t): below it the A cation is too small for the cuboctahedral cavity and ilmenite-
   or LiNbO3-type orderings win; on Bartel's compounds it changes one verdict (TlVO3, rightly).
   No upper bound on t (BaTiO3 has t = 1.06 with these radii) and no bound on the octahedral
   factor (LaAlO3 has mu = r_B / r_X = 0.38): tau weighs both. t and mu are in ``details``.
   BiSbS3 is a borderline case: tau = 4.13 passes by a hair (Bi3+ at CN 8), t = 0.819 fails by
   one.

Measured with this module: 91.0 % of Bartel's 576 compounds right (precision 93 %, recall 90 %).
Of the 32 perovskites it misses, 12 are tau's own errors (CsPbI3, MgSiO3, ...), 12 need a rarer
oxidation state (Co4+ in SrCoO3, Cu3+ in LaCuO3, V2+ in KVF3), 5 are iodates (I as a cation,
which this screen never considers) and 3 are Sn2+ halides (no Shannon radius). On perov-5 (a
combinatorial enumeration of mostly hypothetical cubic ABX3, Castelli et al. 2012) it admits
about 10 % of the formulas, and those hold 43 of the 66 test-split formulas with heat_ref
< 0.2 eV/atom (11 % of the admitted against 1.7 % of all).

Mixed anions (not in Bartel's fit) use the stoichiometry-weighted mean anion radius and the summed
anion charge; nitrides, sulfides and selenides are extrapolations of a rule fitted on oxides and
halides. This is the perovskite rule only: other structural families get no such rule yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from pymatgen.core import Composition, Element

from motif_screen.messages import one_line, quoted
from motif_screen.structures.validity import reduced_counts

__all__ = [
    "ANION_STATES",
    "COMMON_STATE_SHARE",
    "N_A_MAX",
    "TAU_MAX",
    "T_MIN",
    "RULES",
    "common_oxidation_states",
    "shannon_radius",
    "perovskite_screen",
]

ANION_STATES = {"O": -2, "N": -3, "F": -1, "S": -2, "Cl": -1, "Se": -2, "Br": -1, "I": -1}
COMMON_STATE_SHARE = 5.0  # %: a state at least this share of an element's ICSD-2024 reports is common
ICSD_MIN_REPORTS = 3  # SMACT's default consensus: fewer reports than this are noise
TAU_MAX = 4.18  # Bartel et al., Sci. Adv. 2019: tau < 4.18 predicts a perovskite
N_A_MAX = 3  # highest A-site oxidation state: tau was fitted on A+1..A+3 and turns negative for any radii above
T_MIN = 0.825  # lower bound of Goldschmidt's t in Bartel et al.'s fitted window (0.825 < t < 1.059)
CN_A, CN_B, CN_X = 12, 6, 6
RULES = ("formula", "oxidation", "radius", "size")  # the order in which a formula is judged

_ROMAN = {"I": 1, "V": 5, "X": 10}


@lru_cache(maxsize=1)
def _icsd24_shares() -> dict[str, dict[int, float]]:
    """element -> {oxidation state: % of the element's ICSD-2024 reports} (states with >= 3 reports)."""
    # SMACT (and pandas under it) load here, not at import: most users of this package never need it
    from smact.utils.oxidation import ICSD24OxStatesFilter

    table = ICSD24OxStatesFilter().ox_states_df
    table = table[(table["oxidation_state"] != 0) & (table["results_count"] >= ICSD_MIN_REPORTS)]
    shares: dict[str, dict[int, float]] = {}
    for element, rows in table.groupby("element"):
        total = float(rows["results_count"].sum())
        shares[str(element)] = {
            int(q): 100.0 * float(n) / total for q, n in zip(rows["oxidation_state"], rows["results_count"])
        }
    return shares


@lru_cache(maxsize=256)
def common_oxidation_states(symbol: str) -> tuple[int, ...]:
    """The element's oxidation states with at least ``COMMON_STATE_SHARE`` % of its ICSD-2024 reports."""
    shares = _icsd24_shares().get(symbol, {})
    return tuple(sorted(q for q, share in shares.items() if share >= COMMON_STATE_SHARE))


def _cn_value(label: str) -> int:
    """'XII' -> 12, 'IVSQ' -> 4 (square planar), 'IIIPY' -> 3 (pyramidal)."""
    roman = label.removesuffix("SQ").removesuffix("PY")
    values = [_ROMAN[c] for c in roman]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def _d_electrons(symbol: str, oxidation: int) -> int:
    element = Element(symbol)
    return element.group - oxidation if element.is_transition_metal else -1


@lru_cache(maxsize=1024)
def shannon_radius(symbol: str, oxidation: int, cn: int) -> tuple[float, int] | None:
    """(ionic radius in Å, coordination number used) from Shannon's table, or ``None`` if the ion
    has no radius at all. The CN nearest ``cn`` is used when ``cn`` itself is not tabulated (ties:
    the lower CN); plain polyhedra before square-planar/pyramidal ones of the same CN; for ions
    tabulated in both spin states, high spin for d4-d7 and low spin otherwise (Bartel et al.)."""
    table = Element(symbol).data.get("Shannon radii", {}).get(str(oxidation))
    if not table:
        return None
    label = min(table, key=lambda lab: (abs(_cn_value(lab) - cn), _cn_value(lab), len(lab)))
    spins = table[label]
    if "" in spins:
        entry = spins[""]
    elif len(spins) == 1:
        entry = next(iter(spins.values()))
    else:
        entry = spins["High Spin" if 4 <= _d_electrons(symbol, oxidation) <= 7 else "Low Spin"]
    return float(entry["ionic_radius"]), _cn_value(label)


@dataclass(frozen=True)
class _Option:
    """One way of reading the formula: which cation is A, and the oxidation states of A and B."""

    a: str
    b: str
    n_a: int
    n_b: int


def _size_of(option: _Option, anions: dict[str, int]) -> dict:
    """Radii, tau, t and mu of one option; ``missing`` names the ions without a Shannon radius."""
    out: dict = {"A": option.a, "B": option.b, "n_A": option.n_a, "n_B": option.n_b}
    r_a = shannon_radius(option.a, option.n_a, CN_A)
    r_b = shannon_radius(option.b, option.n_b, CN_B)
    found_x = {x: shannon_radius(x, ANION_STATES[x], CN_X) for x in anions}
    r_xs = {x: r for x, r in found_x.items() if r is not None}
    missing = [f"{option.a}{option.n_a:+d}"] if r_a is None else []
    missing += [f"{option.b}{option.n_b:+d}"] if r_b is None else []
    missing += [f"{x}{ANION_STATES[x]:+d}" for x in anions if x not in r_xs]
    if r_a is None or r_b is None or missing:
        return {**out, "missing": missing}
    r_x = sum(n * r_xs[x][0] for x, n in anions.items()) / sum(anions.values())
    out.update(
        r_A=r_a[0],
        r_B=r_b[0],
        r_X=round(r_x, 4),
        cn_A=r_a[1],
        cn_B=r_b[1],
        cn_X={x: r[1] for x, r in r_xs.items()},
        t=(r_a[0] + r_x) / (math.sqrt(2) * (r_b[0] + r_x)),
        mu=r_b[0] / r_x,
        tau=None,
    )
    ratio = r_a[0] / r_b[0]
    if ratio > 1:
        out["tau"] = r_x / r_b[0] - option.n_a * (option.n_a - ratio / math.log(ratio))
    return out


def _size_verdict(size: dict) -> tuple[bool, str]:
    name_a, name_b = f"{size['A']}{size['n_A']:+d}", f"{size['B']}{size['n_B']:+d}"
    if size["n_A"] > N_A_MAX:
        return False, f"A site {name_a} is above +{N_A_MAX}, where tau does not apply (B={name_b})"
    if size.get("tau") is None:
        return False, (
            f"A site {name_a} ({size['r_A']:.3g} Å at CN {size['cn_A']}) is not larger than "
            f"B site {name_b} ({size['r_B']:.3g} Å at CN {size['cn_B']})"
        )
    if size["tau"] >= TAU_MAX:
        return False, f"tau = {size['tau']:.2f} >= {TAU_MAX} (Bartel) for A={name_a}, B={name_b}"
    if size["t"] <= T_MIN:
        return False, f"Goldschmidt t = {size['t']:.3f} <= {T_MIN} (A cation too small) for A={name_a}, B={name_b}"
    return True, f"tau = {size['tau']:.2f} < {TAU_MAX}, t = {size['t']:.3f} for A={name_a}, B={name_b}"


def _split(formula) -> tuple[list[str], dict[str, int]] | str:
    """(cations, {anion: count}) of an ABX3 formula unit, or the reason it is not one."""
    try:
        comp = Composition(formula)
        symbols = [el.symbol for el in comp.element_composition]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"not a chemical formula ({quoted(str(formula))}: {one_line(exc)})"
    unknown = [el for el in symbols if not Element.is_valid_symbol(el)]
    if unknown or not symbols:
        problem = f"no element {', '.join(unknown)}" if unknown else "empty"
        return f"not a chemical formula ({quoted(str(formula))}: {problem})"
    unit = reduced_counts(comp)
    if unit is None:
        return f"{comp.formula} is not written with whole numbers of atoms"
    reduced = dict(zip(*unit))
    cations = sorted((el for el in reduced if el not in ANION_STATES), key=lambda el: Element(el).Z)
    anions = {el: n for el, n in reduced.items() if el in ANION_STATES}
    if len(cations) != 2 or any(reduced[c] != 1 for c in cations) or sum(anions.values()) != 3:
        shown = Composition(reduced).formula.replace(" ", "")
        return f"{shown} is not A B X3 (two different cations, one each, and three of {', '.join(ANION_STATES)})"
    return cations, anions


def perovskite_screen(formula) -> tuple[bool, str, dict]:
    """``(ok, why, details)``: is ``formula`` (text or Composition) a plausible ABX3 perovskite?

    ``details["rule"]`` is the rule that excluded it (one of :data:`RULES`) or ``""`` when it is
    admitted; for judged formulas it also holds A, B, their oxidation states, radii (with the CN
    used), tau, t, mu, and ``options``: every (A, B, n_A, n_B) reading that was tried.
    """
    split = _split(formula)
    if isinstance(split, str):
        return False, split, {"rule": "formula"}
    cations, anions = split
    anion_charge = sum(n * ANION_STATES[x] for x, n in anions.items())
    x_text = "".join(f"{x}{n if n > 1 else ''}" for x, n in sorted(anions.items()))
    states = {c: tuple(q for q in common_oxidation_states(c) if q > 0) for c in cations}
    options = [
        _Option(a, b, n_a, n_b)
        for a, b in (cations, cations[::-1])
        for n_a in states[a]
        for n_b in states[b]
        if n_a + n_b + anion_charge == 0
    ]
    details: dict = {"rule": "", "X": dict(anions), "common_states": {c: list(s) for c, s in states.items()}}
    if not options:
        shown = ", ".join(f"{c} {{{', '.join(f'{q:+d}' for q in s) or 'none'}}}" for c, s in states.items())
        why = (
            f"no common oxidation states of the cations balance {x_text} ({-anion_charge:+d} needed; "
            f"common positive states, >= {COMMON_STATE_SHARE:g}% of ICSD-2024 reports: {shown})"
        )
        return False, why, {**details, "rule": "oxidation"}
    sizes = [_size_of(o, anions) for o in options]
    judged = [(s, *_size_verdict(s)) for s in sizes if "missing" not in s]
    details["options"] = [{k: v for k, v in s.items() if k not in ("cn_X",)} for s in sizes]
    if not judged:
        missing = sorted({ion for s in sizes for ion in s["missing"]})
        why = f"no Shannon radius for {', '.join(missing)}: the size rule cannot judge {x_text} with these cations"
        return False, why, {**details, "rule": "radius", "missing": missing}
    unjudged = sorted({ion for s in sizes for ion in s.get("missing", ())})
    if unjudged:
        details["missing"] = unjudged  # readings left out for want of a radius
    passing = [j for j in judged if j[1]]
    if passing:
        best, _, why = min(passing, key=lambda j: j[0]["tau"])
        return True, why, {**details, **best}

    def closeness(j):  # the failure to show: a reading tau applies to, with the lowest tau
        size = j[0]
        return (size["n_A"] > N_A_MAX, size["tau"] is None, size["tau"] if size["tau"] is not None else math.inf)

    best, _, why = min(judged, key=closeness)
    return False, why, {**details, **best, "rule": "size"}
