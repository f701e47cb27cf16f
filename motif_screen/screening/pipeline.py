"""The pre-screen: validity -> in-batch uniqueness -> novelty -> motif filter -> score -> budget.

Every candidate leaves with exactly one decision and a sentence saying why, and the funnel
counts are computed from those decisions, so nothing can be dropped silently:
``generated == sum(decision_counts.values())`` always holds. Decision codes live in
:mod:`motif_screen.keys` (``invalid:<check>``, ``duplicate_in_batch``, ``known``,
``motif_mismatch``, ``below_cutoff``, ``selected``).

Pure: no database access. The ``Prescreen`` Firetask passes the database's structures as
``references`` and writes the decisions back itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.screening.acquisition import acquisition
from motif_screen.screening.selection import select_top
from motif_screen.screening.targets import TargetSpec
from motif_screen.structures.dedup import ReferenceSet, duplicate_of
from motif_screen.structures.motifs import MotifFilter, motif_summary, parse_motif_filter, site_motifs
from motif_screen.structures.prototypes import abx3_prototype
from motif_screen.structures.validity import FUSED_BOND_FRACTION, check_validity

__all__ = ["CandidateDecision", "ScreenResult", "ScreenSettings", "assess", "decide", "screen", "FUNNEL"]

FUNNEL = ("generated", "valid", "unique", "novel", "screened", "selected")


@dataclass
class CandidateDecision:
    index: int
    decision: str = ""
    detail: str = ""
    validity: dict | None = None  # check -> {"ok", "detail"}, the Candidate.validity shape
    duplicate_of: int | None = None  # index of the earlier candidate it matches
    reference: int | None = None  # index of the matching reference structure
    motifs: dict | None = None  # motif_summary(), the Candidate.motifs shape
    motif_labels: list[str] = field(default_factory=list)
    mean: float | None = None
    std: float | None = None
    score: float | None = None
    rank: int | None = None  # 0 = best score among the screened
    selected_by: str | None = None  # keys.SELECTED_BY_ACQUISITION or keys.SELECTED_AS_CONTROL

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class ScreenResult:
    decisions: list[CandidateDecision]
    counts: dict[str, int]  # the funnel: generated, valid, unique, novel, screened, selected
    selected: list[int]  # candidate indices sent to the oracle: acquisition picks best first, then controls
    target: TargetSpec
    kind: str

    @property
    def decision_counts(self) -> dict[str, int]:
        return dict(Counter(d.decision for d in self.decisions))

    def indices(self, decision: str) -> list[int]:
        return [d.index for d in self.decisions if d.decision == decision]

    def to_records(self) -> list[dict]:
        return [d.to_dict() for d in self.decisions]


def _as_filter(motif_filter):
    if motif_filter is None:
        return None
    if isinstance(motif_filter, MotifFilter):
        return motif_filter
    if isinstance(motif_filter, str):
        return parse_motif_filter(motif_filter)
    raise InputError(
        f"motif_filter must be a MotifFilter or a string like 'Ti:octahedral:O', got {type(motif_filter).__name__}."
    )


def _mean_std(predictions, prop: str, n: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Normalise {prop: (mean, std)}, {prop: {"mean", "std"}} or (mean, std) to two float arrays of length n."""
    if isinstance(predictions, Mapping):
        if prop not in predictions:
            raise InputError(
                f"{where} have no '{prop}', the target property (have: {', '.join(map(str, predictions))})."
            )
        value = predictions[prop]
    else:
        value = predictions
    if isinstance(value, Mapping):
        mean, std = value.get("mean"), value.get("std")
    else:
        try:
            mean, std = value
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where} for '{prop}' must be a (mean, std) pair.") from exc
    mean = np.asarray(mean, dtype=float).reshape(-1)
    std = np.zeros_like(mean) if std is None else np.asarray(std, dtype=float).reshape(-1)
    if len(mean) != n or len(std) != n:
        raise InputError(f"{where} for '{prop}' have {len(mean)} means / {len(std)} stds for {n} candidates.")
    return mean, std


@dataclass(frozen=True)
class ScreenSettings:
    """How the pre-screen judges a batch: validity thresholds, de-duplication, acquisition, controls."""

    kind: str = "ucb"  # acquisition function: ucb, ei, prob_hit
    kappa: float = 2.0  # UCB exploration weight
    score_cutoff: float | None = None  # acquisition scores below this are never selected
    min_distance: float = 0.5  # Å: shortest interatomic distance of a valid structure
    # no two atoms closer than this fraction of their covalent radii (None: CDVAE's distance test only)
    min_bond_fraction: float | None = FUSED_BOND_FRACTION
    check_charge: bool = True
    charge_method: str = "smact"
    matcher: object = None  # a pymatgen StructureMatcher (None: the project's default)
    compute_motifs: bool = True  # store motifs of every valid candidate (else only for the motif filter)
    controls: int = 0  # of the budget, picked uniformly at random from the scored pool
    seed: int = 0  # of the random controls


def screen(
    candidates: Sequence,
    predictions: Mapping | tuple | Callable,
    target: TargetSpec,
    budget: int,
    references=(),
    motif_filter=None,
    settings: ScreenSettings | None = None,
) -> ScreenResult:
    """Pre-screen a batch of candidate structures and pick at most ``budget`` for the oracle.

    ``predictions`` is either aligned with ``candidates`` (``{property: (mean, std)}`` or a bare
    ``(mean, std)`` pair) or a callable that receives the list of structures that reach scoring
    and returns the same for them — so the model only runs on what survives the cheap filters.
    ``references`` (structures or a :class:`~motif_screen.structures.dedup.ReferenceSet`) are the
    known structures: training data and what the database already holds. ``settings.controls`` of
    the budget are drawn uniformly at random (``settings.seed``) from the scored pool before the
    acquisition picks, giving the random baseline for the discovery acceleration factor.

    The same as :func:`assess` (what each candidate is on its own) followed by :func:`decide`
    (what the batch makes of it), which a sharded campaign round runs in different Fireworks.
    """
    settings = settings or ScreenSettings()
    _check_arguments(target, budget, settings.controls)
    motif_filter = _as_filter(motif_filter)
    decisions = assess(candidates, settings, needs_motifs=settings.compute_motifs or motif_filter is not None)
    return decide(candidates, decisions, predictions, target, budget, references, motif_filter, settings)


def assess(candidates: Sequence, settings: ScreenSettings, needs_motifs: bool = True) -> list[CandidateDecision]:
    """The stages that judge each candidate on its own: validity (1) and geometric motifs (4a).

    An invalid candidate leaves with its decision; a valid one leaves undecided, for :func:`decide`.
    Each candidate's result depends on nothing else in the batch, so any split of a round gives
    the same results.
    """
    decisions = [CandidateDecision(index=i) for i in range(len(candidates))]
    valid = _validity(candidates, decisions, settings)
    if needs_motifs:
        _motifs(candidates, decisions, valid)
    return decisions


def decide(
    candidates: Sequence,
    decisions: list[CandidateDecision],
    predictions: Mapping | tuple | Callable,
    target: TargetSpec,
    budget: int,
    references=(),
    motif_filter=None,
    settings: ScreenSettings | None = None,
) -> ScreenResult:
    """The stages that judge candidates against each other and against what is known: uniqueness
    in the batch (2), novelty (3), the motif filter (4b), scores (5) and the budget (6).

    ``decisions`` come from :func:`assess` (one per candidate, in order); only the undecided
    (valid) candidates' structures are read, so the others may be None.
    """
    settings = settings or ScreenSettings()
    _check_arguments(target, budget, settings.controls)
    motif_filter = _as_filter(motif_filter)
    n = len(decisions)
    if len(candidates) != n or any(d.index != i for i, d in enumerate(decisions)):
        raise InputError(
            f"decide needs one decision per candidate, in order ({len(candidates)} candidates, {n} decisions)"
        )
    aligned = None if callable(predictions) else _mean_std(predictions, target.property, n, "Predictions")

    valid = [d.index for d in decisions if not d.decision]
    unique = _unique_in_batch(candidates, decisions, valid, settings.matcher)
    novel = _novel(candidates, decisions, unique, references, settings.matcher)
    pool = _motif_pool(decisions, novel, motif_filter)
    if aligned is not None:
        mean, std = aligned[0][pool], aligned[1][pool]
    elif pool and callable(predictions):  # not aligned: a predictor
        mean, std = _mean_std(
            predictions([candidates[i] for i in pool]),
            target.property,
            len(pool),
            "Predictions returned by the predictor",
        )
    else:
        mean, std = np.zeros(0), np.zeros(0)
    scores = _score(decisions, pool, mean, std, target, settings)
    selected = _select(decisions, pool, scores, budget, settings)

    counts = {
        "generated": n,
        "valid": len(valid),
        "unique": len(unique),
        "novel": len(novel),
        "screened": len(pool),
        "selected": len(selected),
    }
    assert all(d.decision for d in decisions), "every candidate must leave the screen with a decision"
    return ScreenResult(decisions=decisions, counts=counts, selected=selected, target=target, kind=settings.kind)


def _check_arguments(target, budget, controls) -> None:
    if not isinstance(target, TargetSpec):
        raise InputError(f"screen needs a TargetSpec target, got {type(target).__name__}.")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise InputError(f"The screening budget must be a positive integer, got {budget!r}.")
    if isinstance(controls, bool) or not isinstance(controls, (int, np.integer)) or not 0 <= controls < budget:
        raise InputError(f"controls must be an integer in [0, budget), got {controls!r} for budget {budget}.")


def _validity(candidates, decisions, settings: ScreenSettings) -> list[int]:
    """1. physically valid structures (distances, overlapping atoms, volume, charge balance)."""
    valid = []
    for d, structure in zip(decisions, candidates):
        try:
            report = check_validity(
                structure,
                min_distance=settings.min_distance,
                min_bond_fraction=settings.min_bond_fraction,
                check_charge=settings.check_charge,
                charge_method=settings.charge_method,
            )
        except Exception as exc:  # a structure too broken to analyse is invalid, not a crash of the batch
            d.decision, d.detail = keys.DECISION_INVALID_PREFIX + "error", f"validity checks failed to run: {exc}"
            continue
        d.validity = report.to_dict()
        if report.ok:
            valid.append(d.index)
        else:
            first = report.failed[0]
            d.decision, d.detail = keys.DECISION_INVALID_PREFIX + first, report.checks[first].detail
    return valid


def _unique_in_batch(candidates, decisions, valid: list[int], matcher) -> list[int]:
    """2. uniqueness inside the batch (the first of each group survives)."""
    reps = duplicate_of([candidates[i] for i in valid], matcher)
    unique = []
    for position, i in enumerate(valid):
        if reps[position] == position:
            unique.append(i)
        else:
            first = valid[reps[position]]
            decisions[i].decision, decisions[i].duplicate_of = keys.DECISION_DUPLICATE, first
            decisions[i].detail = f"matches candidate {first} of this batch (StructureMatcher)"
    return unique


def _novel(candidates, decisions, unique: list[int], references, matcher) -> list[int]:
    """3. novelty against the known structures."""
    refs = references if isinstance(references, ReferenceSet) else ReferenceSet(list(references), matcher)
    novel = []
    for i in unique:
        match = refs.find(candidates[i])
        if match is None:
            novel.append(i)
        else:
            decisions[i].decision, decisions[i].reference = keys.DECISION_KNOWN, match
            decisions[i].detail = f"matches reference structure {match} (StructureMatcher)"
    return novel


def _motifs(candidates, decisions, indices) -> None:
    """4a. geometric motifs of the given candidates (an analysis error is recorded, not raised)."""
    for i in sorted(set(indices)):
        try:
            motifs = site_motifs(candidates[i])
            decisions[i].motifs = motif_summary(candidates[i], motifs)
            decisions[i].motif_labels = list(decisions[i].motifs["labels"])
            prototype = abx3_prototype(candidates[i].composition, motifs)
            if prototype is not None:  # A B X3 cells: is the decoded cell a perovskite at all?
                decisions[i].motifs["prototype"] = prototype
        except Exception as exc:  # recorded; the filter then treats the candidate as not matching
            decisions[i].motifs = {"error": str(exc)}


def _motif_pool(decisions, novel: list[int], motif_filter) -> list[int]:
    """4b. the motif filter: what is left is the pool that gets predictions."""
    pool = []
    for i in novel:
        if motif_filter is not None and not motif_filter.matches(decisions[i].motif_labels):
            decisions[i].decision = keys.DECISION_MOTIF_MISMATCH
            shown = ", ".join(decisions[i].motif_labels) or "none"
            decisions[i].detail = f"motif labels ({shown}) do not include {motif_filter.label}"
        else:
            pool.append(i)
    return pool


def _score(decisions, pool: list[int], mean, std, target, settings: ScreenSettings) -> np.ndarray:
    """5. acquisition scores on the pool, and each candidate's rank among the scored."""
    scores = acquisition(mean, std, target, kind=settings.kind, kappa=settings.kappa)
    order = np.argsort(-np.where(np.isfinite(scores), scores, -np.inf), kind="stable")
    for rank, position in enumerate(order):
        d = decisions[pool[position]]
        d.mean, d.std, d.score = float(mean[position]), float(std[position]), float(scores[position])
        d.rank = rank if np.isfinite(scores[position]) else None
    return scores


def _select(decisions, pool: list[int], scores: np.ndarray, budget: int, settings: ScreenSettings) -> list[int]:
    """6. selection within the budget: random controls first, then the best scores."""
    kind, cutoff = settings.kind, settings.score_cutoff
    scored = np.isfinite(scores)
    control_positions = np.array([], dtype=int)
    if settings.controls and scored.any():
        rng = np.random.default_rng(settings.seed)
        control_positions = rng.choice(
            np.flatnonzero(scored), size=min(settings.controls, int(scored.sum())), replace=False
        )
    eligible = scored.copy()
    eligible[control_positions] = False
    if cutoff is not None:
        eligible &= scores >= cutoff
    remaining = budget - len(control_positions)
    picked = select_top(scores, remaining, eligible) if remaining > 0 and len(scores) else np.array([], dtype=int)
    selected = [pool[p] for p in picked] + [pool[p] for p in sorted(control_positions)]
    for p in picked:
        decisions[pool[p]].selected_by = keys.SELECTED_BY_ACQUISITION
    for p in control_positions:
        decisions[pool[p]].selected_by = keys.SELECTED_AS_CONTROL
    chosen = set(selected)
    for position, i in enumerate(pool):
        d = decisions[i]
        if i in chosen:
            d.decision = keys.DECISION_SELECTED
            d.detail = (
                "random control pick"
                if d.selected_by == keys.SELECTED_AS_CONTROL
                else f"{kind} score {d.score:.4g}, rank {d.rank}"
            )
        else:
            d.decision = keys.DECISION_BELOW_CUTOFF
            if not np.isfinite(scores[position]):
                d.detail = "no finite prediction for the target property"
            elif cutoff is not None and scores[position] < cutoff:
                d.detail = f"{kind} score {d.score:.4g} < cutoff {cutoff:.4g}"
            else:
                d.detail = f"{kind} score {d.score:.4g}, rank {d.rank}: outside the budget of {budget}"
    return selected
