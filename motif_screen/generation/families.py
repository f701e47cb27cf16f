"""Generation inside a structural family: ABX3 perovskite-type compositions, decoded by the model.

The decoder proposes lattice and coordinates for a composition far more reliably than it invents a
composition from a prior sample (see benchmarks/README.md: composition is the weak part of
reconstruction), so a campaign in a known family fixes the composition and lets the model make the
geometry: ``sample_family`` pairs prior latents with charge-balanced ABX3 formulas over the model's
elements; ``substitute_around`` explores near earlier results — latents of the parent perturbed,
one cation of its formula swapped for another that keeps the formula charge balanced (the
chemist's substitution heuristic).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from pymatgen.core import Composition, Element

from motif_screen.errors import InputError
from motif_screen.generation.modes import _generator, decode_latents
from motif_screen.generation.results import GenerationReport, check_count
from motif_screen.structures.validity import composition_is_valid

ANIONS = ("O", "N", "F", "S", "Cl", "Se")


@lru_cache(maxsize=8)
def abx3_formulas(vocabulary: tuple[int, ...]) -> tuple[str, ...]:
    """Every charge-balanced A B X3 (A != B, X an anion) over the vocabulary, by CDVAE's SMACT rule."""
    symbols = [Element.from_Z(z).symbol for z in vocabulary]
    anions = [s for s in symbols if s in ANIONS]
    cations = [s for s in symbols if s not in ANIONS]
    out = []
    for x in anions:
        for i, a in enumerate(cations):
            for b in cations[i + 1 :]:
                formula = f"{a}{b}{x}3"
                if composition_is_valid(formula)[0]:
                    out.append(formula)
    if not out:
        raise InputError("this model's elements allow no charge-balanced ABX3 composition")
    return tuple(sorted(out))


def _counts(model, formula: str) -> list[int]:
    elements = list(model.config.elements)
    row = [0] * len(elements)
    for el, amount in Composition(formula).items():
        row[elements.index(Element(str(el)).Z)] = int(round(amount))
    return row


def sample_family(
    model, n: int, seed: int = 0, steps: int | None = None, candidates: int | None = None
) -> GenerationReport:
    """``n`` ABX3 structures: prior latents, formulas drawn uniformly from :func:`abx3_formulas`."""
    n = check_count(n)
    formulas = abx3_formulas(tuple(model.config.elements))
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
    return report


def substitutions(formula: str, vocabulary: tuple[int, ...]) -> list[str]:
    """ABX3 formulas one cation away from ``formula`` (same anion), charge balanced."""

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
    return decode_latents(
        model,
        z,
        "substitute",
        parents=[[names[k], chosen[i]] for i, k in enumerate(which)],
        seed=seed + 1,
        counts=[_counts(model, f) for f in chosen],
        steps=steps,
        candidates=candidates,
    )
