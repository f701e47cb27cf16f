"""The five ways of choosing latent vectors to decode; each returns a :class:`GenerationReport`.

* ``sample_prior``  — latents drawn from the model's latent prior: broad exploration;
* ``perturb``       — Gaussian steps around the latents of known seed structures: local exploration;
* ``interpolate``   — a straight path between two structures' latents: the "map" between them;
* ``guided``        — latents pushed by the gradients of a property head (or chosen by rejection);
* ``constrained``   — the decoder's composition restricted to a chemical system or a formula.

The model is any :class:`motif_screen.model.autoencoder.StructureAutoencoder`. All randomness
comes from ``seed``, so a call is reproducible.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import torch
from pymatgen.core import Composition, Element

from motif_screen import limits
from motif_screen.errors import InputError
from motif_screen.generation.compositions import compound_rule
from motif_screen.generation.results import GeneratedStructure, GenerationReport, assess, check_count
from motif_screen.structures.validity import check_composition_text, composition_is_valid

__all__ = ["sample_prior", "perturb", "interpolate", "guided", "constrained", "decode_latents", "parse_composition"]

GOALS = ("minimize", "maximize")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _name(structure, index: int, names: Sequence[str] | None) -> str:
    if names is not None:
        return str(names[index])
    props = getattr(structure, "properties", None) or {}
    for key in ("material_id", "id", "name", "qm9_index"):
        if key in props:
            return str(props[key])
    formula = structure.composition.reduced_formula if hasattr(structure, "composition") else type(structure).__name__
    return f"{formula}#{index}"


def decode_latents(
    model,
    latents: torch.Tensor,
    mode: str,
    parents: Sequence[Sequence[str]] | None = None,
    seed: int = 0,
    counts=None,
    steps: int | None = None,
    check_charge: bool = True,
    candidates: int | None = None,
    charge_balanced: bool = True,
) -> GenerationReport:
    """Decode latents, predict their properties, check validity; the common tail of every mode.
    ``steps`` and ``candidates`` (structures decoded per latent, see ``StructureAutoencoder.decode``)
    default to the model's own settings; compositions the decoder chooses itself are restricted to
    ones that can be a compound (crystals: SMACT charge balance; molecules: valences that pair into
    bonds) unless ``charge_balanced`` is False."""
    start = time.time()
    latents = model.check_latent(latents)
    accept = compound_rule(model.config.elements, model.config.periodic) if charge_balanced else None
    with torch.no_grad():
        structures = model.decode(
            latents, counts=counts, steps=steps, generator=_generator(seed), candidates=candidates, accept=accept
        )
        predictions = {k: (m.tolist(), s.tolist()) for k, (m, s) in model.predict_properties(latents).items()}
    latent_rows = latents.tolist()
    items = []
    for i, structure in enumerate(structures):
        ok, reason, checks = assess(structure, check_charge=check_charge)
        items.append(
            GeneratedStructure(
                structure=structure,
                mode=mode,
                parents=list(parents[i]) if parents is not None else [],
                latent=latent_rows[i],
                model_version=model.model_version,
                model_name=model.model_name,
                valid=ok,
                reason=reason,
                validity=checks,
                predictions={k: (m[i], s[i]) for k, (m, s) in predictions.items()},
            )
        )
    return GenerationReport(mode=mode, requested=len(latents), structures=items, seconds=time.time() - start)


# ---------------------------------------------------------------------------------------------
def sample_prior(
    model,
    n: int,
    seed: int = 0,
    temperature: float = 1.0,
    steps: int | None = None,
    candidates: int | None = None,
    charge_balanced: bool = True,
) -> GenerationReport:
    """``n`` structures decoded from latents drawn from the model's latent prior (a Gaussian mixture
    fitted to the encoded training set), each component's spread scaled by ``temperature``."""
    n = check_count(n)
    limits.TEMPERATURE.check(temperature, "temperature")
    z = model.sample_latents(n, _generator(seed), temperature)
    return decode_latents(
        model, z, "prior", seed=seed + 1, steps=steps, candidates=candidates, charge_balanced=charge_balanced
    )


def perturb(
    model,
    seeds: Sequence,
    n: int,
    scale: float = 0.3,
    seed: int = 0,
    names: Sequence[str] | None = None,
    steps: int | None = None,
    candidates: int | None = None,
    charge_balanced: bool = True,
) -> GenerationReport:
    """``n`` structures around seed structures (round-robin): z = encode(seed) + scale · (a prior-shaped step).

    ``scale`` is in prior units (the step has the prior's covariance times scale²), so 0.1 stays
    close to the seed and 1.0 wanders as far as the whole prior. A seed the encoder cannot read
    raises InputError naming it.
    """
    n = check_count(n)
    if not seeds:
        raise InputError("perturb needs at least one seed structure")
    limits.PERTURB_SCALE.check(scale, "perturbation scale")
    labels = [_name(s, i, names) for i, s in enumerate(seeds)]
    centres = model.encode(list(seeds), names=labels)
    which = torch.arange(n) % len(seeds)
    z = model.sample_latents(n, _generator(seed), float(scale), centres=centres[which])
    return decode_latents(
        model,
        z,
        "perturb",
        parents=[[labels[int(k)]] for k in which],
        seed=seed + 1,
        steps=steps,
        candidates=candidates,
        charge_balanced=charge_balanced,
    )


def interpolate(
    model,
    a,
    b,
    steps: int = 10,
    seed: int = 0,
    names: Sequence[str] | None = None,
    flow_steps: int | None = None,
    candidates: int | None = None,
    charge_balanced: bool = True,
) -> GenerationReport:
    """``steps`` structures on the straight latent path from structure ``a`` to ``b`` (both ends included).

    Every point is decoded from the same initial noise (one seed), so changes along the path come
    from the latent, not from the sampler.
    """
    steps = check_count(steps, "interpolation steps")
    if steps < 2:
        raise InputError("interpolation needs at least 2 steps (the two end points)")
    labels = [_name(a, 0, names), _name(b, 1, names)]
    za, zb = model.encode([a, b], names=labels)
    weights = torch.linspace(0.0, 1.0, steps)[:, None]
    z = (1 - weights) * za + weights * zb
    reports = [
        decode_latents(
            model,
            z[i : i + 1],
            "interpolate",
            parents=[labels],
            seed=seed,
            steps=flow_steps,
            candidates=candidates,
            charge_balanced=charge_balanced,
        )
        for i in range(steps)
    ]
    return GenerationReport("interpolate", steps, [r.structures[0] for r in reports], sum(r.seconds for r in reports))


def guided(
    model,
    n: int,
    target: str,
    goal: str | float = "minimize",
    seed: int = 0,
    method: str = "gradient",
    iterations: int = 100,
    learning_rate: float = 0.05,
    prior_weight: float = 0.1,
    oversample: int = 10,
    steps: int | None = None,
    candidates: int | None = None,
    charge_balanced: bool = True,
) -> GenerationReport:
    """``n`` structures whose latents a property head scores well.

    ``goal``: ``"minimize"``, ``"maximize"`` or a number (aim at that value). ``method="gradient"``
    follows the head's gradient from prior samples, with a Gaussian prior penalty
    (``prior_weight`` · |z|²/2) that keeps latents where the decoder was trained;
    ``"rejection"`` draws ``oversample`` · n prior latents and keeps the n best predictions.
    """
    n = check_count(n)
    properties = list(getattr(model.config, "properties", []))
    if target not in properties:
        known = ", ".join(properties) or "none"
        raise InputError(f"this model has no head for {target!r} (it predicts: {known})")
    if isinstance(goal, str) and goal not in GOALS:
        try:
            goal = float(goal)
        except ValueError:
            raise InputError(f"goal must be 'minimize', 'maximize' or a number, got {goal!r}") from None
    if method not in ("gradient", "rejection"):
        raise InputError(f"guided method must be 'gradient' or 'rejection', got {method!r}")

    def objective(z):
        mean = model.predict_properties(z)[target][0]
        if goal == "minimize":
            return mean
        if goal == "maximize":
            return -mean
        return (mean - float(goal)) ** 2

    gen = _generator(seed)
    if method == "rejection":
        pool = model.sample_latents(check_count(n * oversample), gen)
        with torch.no_grad():
            score = objective(pool)
        z = pool[torch.argsort(score)[:n]]
    else:
        z = model.sample_latents(n, gen).requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=learning_rate)
        for _ in range(int(iterations)):
            loss = objective(z).sum() + prior_weight * model.latent_prior_energy(z).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        z = z.detach()
    report = decode_latents(
        model, z, "guided", seed=seed + 1, steps=steps, candidates=candidates, charge_balanced=charge_balanced
    )
    for item in report:
        item.parents = [f"{target}:{goal}:{method}"]
    return report


# ---------------------------------------------------------------------------------------------
def parse_composition(text: str, vocabulary: Sequence[int]) -> tuple[list[int], dict[int, int] | None]:
    """``"Ba-Ti-O"`` -> (atomic numbers, None); ``"BaTiO3"`` -> (atomic numbers, {Z: count}).

    Unknown symbols, elements outside the model's vocabulary and compositions that cannot be
    charge balanced raise InputError.
    """
    text = check_composition_text(str(text)).strip()
    if not text:
        raise InputError("give a chemical system (Ba-Ti-O) or a formula (BaTiO3)")
    if "-" in text:
        symbols = [s.strip() for s in text.split("-") if s.strip()]
        formula = None
    else:
        try:
            comp = Composition(text)
        except Exception:
            raise InputError(f"{text!r} is not a formula pymatgen can read") from None
        symbols = [str(el) for el in comp.elements]
        formula = comp
    numbers = []
    for symbol in symbols:
        if not Element.is_valid_symbol(symbol):
            raise InputError(f"{symbol!r} in {text!r} is not a chemical element")
        numbers.append(Element(symbol).Z)
    outside = [Element.from_Z(z).symbol for z in numbers if z not in set(vocabulary)]
    if outside:
        raise InputError(
            f"{text!r} contains {', '.join(outside)}, which this model never saw in training and cannot generate"
        )
    if formula is not None:
        ok, detail = composition_is_valid(formula)
        if not ok:
            raise InputError(f"{text} cannot be charge balanced ({detail})")
        counts = {Element(str(el)).Z: int(round(amt)) for el, amt in formula.items()}
        if any(abs(amt - round(amt)) > 1e-6 for amt in formula.values()):
            raise InputError(f"{text} has fractional amounts; give an integer formula")
        return numbers, counts
    if not _chemsys_can_balance(tuple(symbols)):
        raise InputError(f"no small composition of {text} is charge balanced (tried up to 6 atoms of each element)")
    return numbers, None


def _chemsys_can_balance(symbols: tuple[str, ...], max_count: int = 6) -> bool:
    for counts in itertools.product(range(1, max_count + 1), repeat=len(symbols)):
        formula = "".join(f"{s}{c}" for s, c in zip(symbols, counts))
        if composition_is_valid(formula)[0]:
            return True
    return False


def constrained(
    model, n: int, composition: str, seed: int = 0, steps: int | None = None, candidates: int | None = None
) -> GenerationReport:
    """``n`` structures restricted to a chemical system (``"Ba-Ti-O"``: every element present, the
    decoder chooses the ratios) or a formula (``"BaTiO3"``: those ratios, as many formula units as
    fit the decoder's predicted size)."""
    n = check_count(n)
    elements = list(model.config.elements)
    numbers, fixed = parse_composition(composition, elements)
    index = [elements.index(z) for z in numbers]
    z = model.sample_latents(n, _generator(seed))
    decoder = model.decoder
    max_atoms = decoder.config.max_atoms
    if fixed is None:
        if len(index) > max_atoms:
            raise InputError(
                f"{composition} has {len(index)} elements, more than the {max_atoms} atoms this model decodes"
            )
        system = torch.zeros(len(elements), dtype=torch.bool)
        system[index] = True
        counts = decoder.predict_counts(z, allowed=system, required=system)
    else:
        unit = sum(fixed.values())
        if unit > max_atoms:
            raise InputError(
                f"{composition} has {unit} atoms per formula unit, more than this model decodes ({max_atoms})"
            )
        with torch.no_grad():
            logits = decoder.num_atoms_head(z)
            logits[:, 0] = -torch.inf
            predicted = logits.argmax(-1).tolist()
        counts = []
        for size in predicted:
            units = max(1, min(max_atoms // unit, round(size / unit)))
            row = [0] * len(elements)
            for number, c in fixed.items():
                row[elements.index(number)] = c * units
            counts.append(row)
    report = decode_latents(model, z, "constrained", seed=seed + 1, counts=counts, steps=steps, candidates=candidates)
    for item in report:
        item.parents = [composition]
    return report
