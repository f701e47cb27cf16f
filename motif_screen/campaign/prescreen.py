"""Pre-screening one round's proposals: a decision with a reason for every candidate.

validity -> uniqueness in the batch -> novelty (database + training set) -> motif filter ->
predictions with uncertainty -> acquisition -> the top of the round's budget, plus random
controls drawn from the same screened pool so the acceleration factor is measured, not assumed.
Nothing is dropped silently: the counts add up to the number of proposals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from motif_screen import keys


@dataclass
class Decision:
    rejected: bool = False
    reason: str | None = None
    validity: dict = field(default_factory=dict)
    motifs: dict = field(default_factory=dict)
    motif_labels: list = field(default_factory=list)
    predictions: dict = field(default_factory=dict)  # property -> (mean, std)
    acquisition: float | None = None
    selection: str | None = None


@dataclass
class PrescreenResult:
    decisions: list[Decision]
    counts: dict


def _reject(decision: Decision, reason: str) -> None:
    decision.rejected, decision.reason = True, reason


def screen_candidates(structures: list, *, predict: Callable, spec, budget: int, references: list,
                      training_fingerprints: set[str] | None = None, seed: int = 0) -> PrescreenResult:
    from motif_screen.screening import acquisition_scores
    from motif_screen.structures.dedup import novel_mask, unique_indices
    from motif_screen.structures.fingerprint import fingerprint
    from motif_screen.structures.motifs import motif_labels, motif_summary, parse_motif_filter
    from motif_screen.structures.validity import check_validity

    decisions = [Decision() for _ in structures]
    motif_filter = parse_motif_filter(spec.motif) if spec.motif else None

    valid = []
    for i, s in enumerate(structures):
        report = check_validity(s)
        decisions[i].validity = report.to_dict() if hasattr(report, "to_dict") else {}
        if report.ok:
            valid.append(i)
        else:
            _reject(decisions[i], f"invalid: {report.reason}")

    unique = [valid[j] for j in unique_indices([structures[i] for i in valid])]
    for i in sorted(set(valid) - set(unique)):
        _reject(decisions[i], "duplicate of another candidate in this round")

    novel = list(unique)
    if training_fingerprints:
        known = [i for i in novel if fingerprint(structures[i]) in training_fingerprints]
        for i in known:
            _reject(decisions[i], "known: in the model's training set")
        novel = [i for i in novel if i not in set(known)]
    if references and novel:
        mask = novel_mask([structures[i] for i in novel], references)
        for i, is_novel in zip(list(novel), mask):
            if not is_novel:
                _reject(decisions[i], "known: already sent to an oracle")
        novel = [i for i, is_novel in zip(novel, mask) if is_novel]

    screened = []
    for i in novel:
        decisions[i].motifs = motif_summary(structures[i])
        decisions[i].motif_labels = motif_labels(structures[i])
        if motif_filter is not None and not motif_filter.matches(decisions[i].motif_labels):
            _reject(decisions[i], f"motif: not every site matches {motif_filter.label}")
        else:
            screened.append(i)

    selected = controls = []
    if screened:
        preds = predict([structures[i] for i in screened])
        if spec.target.property not in preds:
            from motif_screen.errors import ModelError

            raise ModelError(f"the campaign's model has no head for {spec.target.property}; "
                             f"it predicts {', '.join(preds) or 'nothing'}")
        mean, std = (np.asarray(a, dtype=float) for a in preds[spec.target.property])
        scores = acquisition_scores(mean, std, spec.target, kind=spec.acquisition, kappa=spec.kappa)
        for k, i in enumerate(screened):
            decisions[i].predictions = {p: (float(m[k]), float(s[k])) for p, (m, s) in preds.items()}
            decisions[i].acquisition = float(scores[k])
            decisions[i].reason = "screened: below the round's acquisition cut"
        n_controls = min(spec.control_count(budget), len(screened))
        n_acq = min(budget - n_controls, len(screened))
        order = np.argsort(-scores, kind="stable")
        selected = [screened[k] for k in order[:n_acq]]
        rest = [screened[k] for k in order[n_acq:]]
        rng = np.random.default_rng(seed)
        controls = [rest[k] for k in rng.choice(len(rest), size=min(n_controls, len(rest)), replace=False)] if rest else []
        for i in selected:
            decisions[i].selection, decisions[i].reason = keys.SELECTED_BY_ACQUISITION, "selected: top acquisition"
        for i in controls:
            decisions[i].selection, decisions[i].reason = keys.SELECTED_AS_CONTROL, "selected: random control"

    counts = {"generated": len(structures), "valid": len(valid), "unique": len(unique), "novel": len(novel),
              "screened": len(screened), "selected": len(selected), "controls": len(controls),
              "rejected": sum(d.rejected for d in decisions)}
    assert counts["rejected"] + counts["screened"] == counts["generated"], counts  # nothing dropped silently
    return PrescreenResult(decisions, counts)
