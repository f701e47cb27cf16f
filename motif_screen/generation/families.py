"""Generation inside a structural family: ABX3 perovskite-type compositions, decoded by the model.

The decoder proposes lattice and coordinates for a composition far more reliably than it invents a
composition from a prior sample (see benchmarks/README.md: composition is the weak part of
reconstruction), so a campaign in a known family fixes the composition and lets the model make the
geometry: ``sample_family`` pairs prior latents with ABX3 formulas over the model's elements;
``substitute_around`` explores near earlier results — latents of the parent perturbed, one cation
of its formula swapped for another that keeps an admitted ABX3 formula (the chemist's
substitution heuristic).

Which ABX3 formulas (:func:`abx3_formulas`, :func:`abx3_screen`, :func:`abx3_rule_counts`): every
A B X3 over the vocabulary (A != B, X one anion) must pass, in this order,

1. CDVAE's SMACT rule (``composition_is_valid``), the charge check the decoded structures face;
2. common oxidation states: A and B positive, X in its usual state (O2-, N3-, F-, S2-, ...), from
   ICSD frequencies (:func:`motif_screen.structures.perovskite.perovskite_screen`);
3. Shannon radii known for A (CN 12), B and X (CN 6), nearest tabulated CN otherwise;
4. the perovskite size rule: Bartel's tau < 4.18 with A the larger cation, and Goldschmidt's
   t > 0.825.

Rules 2-4 are chemistry for *perovskites*; there is only this one family here, and no other family
(spinels, Ruddlesden-Popper, ...) gets a rule of its own yet. Until the CDVAE rule alone admitted
SiGeF3 (Si+4 Ge-1), TaTeF3, YZrF3 and BiSbS3: unusual oxidation states and no size criterion.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
from pymatgen.core import Composition, Element

from motif_screen.errors import InputError
from motif_screen.generation.modes import _generator, decode_latents
from motif_screen.generation.results import GenerationReport, check_count
from motif_screen.structures.perovskite import ANION_STATES, perovskite_screen
from motif_screen.structures.validity import composition_is_valid

__all__ = [
    "ANIONS",
    "FUNNEL",
    "FormulaVerdict",
    "abx3_formulas",
    "abx3_rule_counts",
    "abx3_screen",
    "perovskite_screen",
    "sample_family",
    "substitute_around",
    "substitutions",
]

ANIONS = tuple(ANION_STATES)  # the X of ABX3, each in its usual state (O2-, N3-, F-, S2-, Cl-, Se2-, Br-, I-)
# the rules in the order they are applied, each named by what a formula has once it passes it
FUNNEL = ("candidates", "charge_balanced_smact", "common_oxidation_states", "shannon_radii", "perovskite_size")
_RULE_OF_FUNNEL = {"charge_balanced_smact": "smact", "common_oxidation_states": "oxidation", "shannon_radii": "radius"}


class FormulaVerdict(NamedTuple):
    """One A B X3 over a vocabulary: admitted or not, the rule that decided (``""`` when admitted)
    and why. Admitted formulas are written A first (``BaTiO3``), the others in vocabulary order."""

    formula: str
    ok: bool
    rule: str  # "" | "smact" | "formula" | "oxidation" | "radius" | "size"
    why: str


@lru_cache(maxsize=8)
def abx3_screen(vocabulary: tuple[int, ...]) -> tuple[FormulaVerdict, ...]:
    """Every A B X3 (A != B, X one anion) over the vocabulary, judged by the rules of the module docstring."""
    symbols = [Element.from_Z(z).symbol for z in vocabulary]
    anions = [s for s in symbols if s in ANIONS]
    cations = [s for s in symbols if s not in ANIONS]
    out = []
    for x in anions:
        for i, a in enumerate(cations):
            for b in cations[i + 1 :]:
                formula = f"{a}{b}{x}3"
                balanced, reason = composition_is_valid(formula)
                if not balanced:
                    out.append(FormulaVerdict(formula, False, "smact", reason))
                    continue
                ok, why, details = perovskite_screen(formula)
                if ok:
                    formula = f"{details['A']}{details['B']}{x}3"
                out.append(FormulaVerdict(formula, ok, details["rule"], why))
    return tuple(out)


def abx3_rule_counts(vocabulary: tuple[int, ...]) -> dict[str, int]:
    """How many A B X3 formulas over the vocabulary pass each rule, in order (:data:`FUNNEL`): all
    candidates, then those charge balanced by CDVAE's rule, with common oxidation states, with
    known radii, and passing the size rule (= ``len(abx3_formulas(vocabulary))``)."""
    verdicts = abx3_screen(vocabulary)
    counts = {"candidates": len(verdicts)}
    failed = {"formula"}
    for name, rule in _RULE_OF_FUNNEL.items():
        failed.add(rule)
        counts[name] = sum(v.rule not in failed for v in verdicts)
    counts["perovskite_size"] = sum(v.ok for v in verdicts)
    return counts


@lru_cache(maxsize=8)
def abx3_formulas(vocabulary: tuple[int, ...]) -> tuple[str, ...]:
    """The admitted A B X3 formulas over the vocabulary (see :func:`abx3_screen`), A first, sorted."""
    out = sorted(v.formula for v in abx3_screen(vocabulary) if v.ok)
    if not out:
        counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in abx3_rule_counts(vocabulary).items())
        raise InputError(f"this model's elements allow no ABX3 perovskite composition ({counts})")
    return tuple(out)


def _counts(model, formula: str) -> list[int]:
    elements = list(model.config.elements)
    row = [0] * len(elements)
    for el, amount in Composition(formula).items():
        row[elements.index(Element(str(el)).Z)] = int(round(amount))
    return row


def sample_family(
    model, n: int, seed: int = 0, steps: int | None = None, candidates: int | None = None
) -> GenerationReport:
    """``n`` ABX3 structures: prior latents, formulas drawn uniformly from :func:`abx3_formulas`;
    the report's ``formula_rules`` says how many formulas passed each rule."""
    n = check_count(n)
    vocabulary = tuple(model.config.elements)
    formulas = abx3_formulas(vocabulary)
    rng = np.random.default_rng(seed)
    chosen = [formulas[k] for k in rng.integers(len(formulas), size=n)]
    z = model.sample_latents(n, _generator(seed))
    report = decode_latents(
        model,
        z,
        "family",
        parents=[[f] for f in chosen],
        seed=seed + 1,
        counts=[_counts(model, f) for f in chosen],
        steps=steps,
        candidates=candidates,
    )
    report.formula_rules = abx3_rule_counts(vocabulary)
    return report


def substitutions(formula: str, vocabulary: tuple[int, ...]) -> list[str]:
    """Admitted ABX3 formulas (:func:`abx3_formulas`) one cation away from ``formula``, same anion."""

    def split(f):
        els = {str(e) for e in Composition(f).elements}
        return els - set(ANIONS), els & set(ANIONS)

    cations, anion = split(formula)
    out = []
    for other in abx3_formulas(vocabulary):
        other_cations, other_anion = split(other)
        if other_anion == anion and len(cations & other_cations) == 1:
            out.append(other)
    return out


def substitute_around(
    model,
    seeds: list,
    n: int,
    scale: float = 0.5,
    seed: int = 0,
    names: list[str] | None = None,
    steps: int | None = None,
    candidates: int | None = None,
) -> GenerationReport:
    """``n`` structures near seed structures: perturbed latents, one-cation substitutions of their formula."""
    n = check_count(n)
    if not seeds:
        raise InputError("substitute_around needs at least one seed structure")
    names = names or [s.composition.reduced_formula for s in seeds]
    vocabulary = tuple(model.config.elements)
    options = [
        substitutions(s.composition.reduced_formula, vocabulary) or [s.composition.reduced_formula] for s in seeds
    ]
    centres = model.encode(list(seeds), names=names)
    rng = np.random.default_rng(seed)
    which = np.arange(n) % len(seeds)
    chosen = [options[k][rng.integers(len(options[k]))] for k in which]
    z = model.sample_latents(n, _generator(seed), float(scale), centres=centres[torch.as_tensor(which)])
    report = decode_latents(
        model,
        z,
        "substitute",
        parents=[[names[k], chosen[i]] for i, k in enumerate(which)],
        seed=seed + 1,
        counts=[_counts(model, f) for f in chosen],
        steps=steps,
        candidates=candidates,
    )
    report.formula_rules = abx3_rule_counts(vocabulary)
    return report
