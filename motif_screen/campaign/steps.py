"""The steps of a campaign round, each called by one Firetask and each safe to run again.

generate_round   proposes structures with the campaign's model and stores them (proposed);
prescreen_round  validity, de-duplication, novelty, predictions, motifs, acquisition, selection
                 (screened / rejected with a reason; the selected get ``selection``);
submit_round     builds the oracle workflows of the selected candidates (submitted);
collect_round    links oracle results, marks candidates of fizzled runs failed with the reason;
retrain_round    fine-tunes on all oracle results of the campaign, registers and maybe promotes;
next_round       writes the round's funnel record and adds the next round, or ends the campaign.

Idempotence comes from the database: candidates are upserted by fingerprint, every step only
touches candidates in the status it expects, and a re-run of a finished step changes nothing.
"""

from __future__ import annotations

import logging

import numpy as np

from motif_screen import keys
from motif_screen.campaign import models
from motif_screen.campaign.launchpad import fizzle_reasons, oracle_fireworks
from motif_screen.campaign.spec import CampaignSpec
from motif_screen.campaign.store import load_spec, set_campaign_status
from motif_screen.db.documents import Candidate, OracleResult, RoundRecord
from motif_screen.db.records import record_oracle_result, set_predictions, set_status, upsert_candidate

log = logging.getLogger(__name__)


def _round_candidates(campaign: str, round_index: int, **filters):
    return Candidate.objects(campaign=campaign, origin__round=round_index, **filters)


def _progress(iterable, desc: str, total: int | None = None):
    from motif_screen.settings import get_settings

    if not get_settings().progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


# --- generate ------------------------------------------------------------------------------------

def generate_round(campaign: str, round_index: int, conn=None) -> dict:
    """Propose ``candidates_per_round`` structures; deterministic for (campaign seed, round)."""
    spec = load_spec(campaign)
    set_campaign_status(campaign, "running")
    existing = _round_candidates(campaign, round_index).count()
    if existing:
        log.info("round %d of %s already has %d candidates; not generating again", round_index, campaign, existing)
        return {"generated": existing, "inserted": 0, "resumed": True}
    model, version = models.campaign_model(spec)
    proposals, report = models.propose(model, spec, round_index, seeds=_exploration_seeds(spec, round_index))
    inserted = 0
    for prop in _progress(proposals, f"store round {round_index}"):
        _, created = upsert_candidate(
            campaign,
            prop.structure,
            origin={"method": prop.mode, "parents": list(prop.parents), "model_name": spec.model.name,
                    "model_version": version, "round": round_index},
            latent=prop.latent,
        )
        inserted += int(created)
    result = {"generated": len(proposals), "inserted": inserted,
              "identical_fingerprints": len(proposals) - inserted, **report}
    RoundRecord.objects(campaign=campaign, round=round_index).update_one(
        upsert=True, set__generated=len(proposals), set__model_version=version)
    return result


def _exploration_seeds(spec: CampaignSpec, round_index: int) -> list:
    """Later rounds explore around the best oracle results so far (hits first)."""
    if round_index == 0 or not spec.generation.explore_after_first_round:
        return []
    docs = list(Candidate.objects(campaign=spec.name, status=keys.STATUS_COMPUTED))
    values = [(d.oracle or {}).get(spec.target.property) for d in docs]
    scored = [(v, d) for v, d in zip(values, docs) if v is not None]
    reverse = spec.target.goal == "maximize"
    scored.sort(key=lambda t: t[0], reverse=reverse)
    return [(str(d.id), d.to_structure()) for _, d in scored[:8]]


# --- prescreen -----------------------------------------------------------------------------------

def _reference_structures(spec: CampaignSpec) -> list:
    """Everything already sent to an oracle, in any campaign: never submit the same material twice."""
    sent = Candidate.objects(status__in=[keys.STATUS_SUBMITTED, keys.STATUS_COMPUTED, keys.STATUS_FAILED])
    return [d.to_structure() for d in sent.only("structure")]


def _predictor(model, stash: dict):
    """The screen calls this on the survivors only; every property is kept for the database."""

    def predict(structures):
        preds = models.predict(model, structures)
        for k, s in enumerate(structures):
            stash[id(s)] = {p: (float(m[k]), float(sd[k])) for p, (m, sd) in preds.items()}
        return preds

    return predict


def prescreen_round(campaign: str, round_index: int, conn=None) -> dict:
    """Screen the round's proposals and write every decision back (rejected ones with the reason)."""
    from motif_screen.screening import TargetSpec, screen

    spec = load_spec(campaign)
    docs = list(_round_candidates(campaign, round_index, status=keys.STATUS_PROPOSED))
    if not docs:
        return {"screened": _round_candidates(campaign, round_index, status=keys.STATUS_SCREENED).count(), "resumed": True}
    structures = [d.to_structure() for d in docs]
    model, _ = models.campaign_model(spec)
    budget = spec.round_budget(round_index)
    stash: dict = {}
    result = screen(
        structures, _predictor(model, stash), TargetSpec.from_document(spec.target), budget,
        references=_reference_structures(spec), motif_filter=spec.motif, kind=spec.acquisition, kappa=spec.kappa,
        controls=spec.control_count(budget), seed=spec.seed * 1000 + round_index,
    )
    for doc, structure, d in _progress(list(zip(docs, structures, result.decisions)), f"prescreen round {round_index}"):
        extra = {"validity": d.validity or {}, "motifs": d.motifs or {}, "motif_labels": d.motif_labels}
        if id(structure) in stash:
            set_predictions(doc.id, stash[id(structure)], acquisition=d.score, **extra)
        else:
            Candidate.objects(id=doc.id).update_one(**{f"set__{k}": v for k, v in extra.items()})
        reason = f"{d.decision}: {d.detail}" if d.detail else d.decision
        if d.decision in (keys.DECISION_SELECTED, keys.DECISION_BELOW_CUTOFF):
            set_status(doc.id, keys.STATUS_SCREENED, reason=reason, selection=d.selected_by)
        else:
            set_status(doc.id, keys.STATUS_REJECTED, reason=reason)
    counts = result.counts
    RoundRecord.objects(campaign=campaign, round=round_index).update_one(
        upsert=True, **{f"set__{k}": int(counts[k]) for k in ("valid", "unique", "novel", "screened")})
    return {**counts, "decisions": result.decision_counts}


# --- submit --------------------------------------------------------------------------------------

def submit_round(campaign: str, round_index: int, conn=None) -> dict:
    from motif_screen.campaign.workflow import chgnet_oracle_firework, collect_firework, with_collector

    spec = load_spec(campaign)
    selected = list(_round_candidates(campaign, round_index, selection__in=list(keys.SELECTIONS),
                                      status__in=[keys.STATUS_SCREENED, keys.STATUS_SUBMITTED]))
    submitted_ids = [str(d.id) for d in selected if d.status == keys.STATUS_SUBMITTED]
    on_lpad = set(oracle_fireworks(submitted_ids))
    todo = [d for d in selected if d.status == keys.STATUS_SCREENED or str(d.id) not in on_lpad]
    if not todo and selected:
        return {"submitted": 0, "already_submitted": len(selected), "workflow": None}
    workflows = []
    for doc in todo:
        cid = str(doc.id)
        if spec.oracle == keys.SOURCE_CHGNET:
            from fireworks import Workflow

            from motif_screen.handoff.powerups import priority_from_acquisition

            priority = priority_from_acquisition(doc.acquisition) if doc.acquisition is not None else None
            workflows.append(Workflow([chgnet_oracle_firework(cid, campaign, round_index, priority, spec.chgnet_steps)]))
        else:
            from motif_screen.handoff.atomate_wf import build_oracle_workflow

            workflows.append(build_oracle_workflow(
                doc.to_structure(), spec.target.property, candidate_id=cid, campaign=campaign,
                model_version=doc.origin.model_version, priority=doc.acquisition,
                queue_options=spec.atomate.queue_options, preset=spec.atomate.preset))
        set_status(doc.id, keys.STATUS_SUBMITTED)
    RoundRecord.objects(campaign=campaign, round=round_index).update_one(upsert=True, set__submitted=len(selected))
    workflow = with_collector(workflows, collect_firework(campaign, round_index))
    return {"submitted": len(todo), "already_submitted": len(selected) - len(todo), "workflow": workflow}


# --- collect -------------------------------------------------------------------------------------

def collect_round(campaign: str, round_index: int, conn=None) -> dict:
    """Every submitted candidate of the round leaves computed or failed, with the reason.

    Fizzled oracle Fireworks fail their candidate with FireWorks' message; atomate task documents
    not yet linked (e.g. a custom preset without our recording step) are linked here; anything else
    finished without a result and fails with that reason.
    """
    spec = load_spec(campaign)
    pending = {str(d.id): d for d in _round_candidates(campaign, round_index, status=keys.STATUS_SUBMITTED)}
    counts = {"fizzled": 0, "linked": 0, "no_result": 0}
    for cid, reason in fizzle_reasons(list(pending)).items():
        record_oracle_result(cid, spec.oracle, run_status="failed", errors=[reason])
        pending.pop(cid)
        counts["fizzled"] += 1
    if pending and spec.oracle == keys.SOURCE_VASP and conn is not None:
        from motif_screen.oracles.taskdocs import oracle_values_from_taskdocs

        tasks = conn.db[conn.tasks_collection]
        for cid in list(pending):
            taskdocs = list(tasks.find({keys.TASKDOC_CANDIDATE_ID: cid}))
            if taskdocs:
                record_oracle_result(cid, keys.SOURCE_VASP, **oracle_values_from_taskdocs(taskdocs))
                pending.pop(cid)
                counts["linked"] += 1
    for cid in pending:
        record_oracle_result(cid, spec.oracle, run_status="failed",
                             errors=["its oracle Fireworks finished without recording a result"])
        counts["no_result"] += 1
    counts["computed"] = _round_candidates(campaign, round_index, status=keys.STATUS_COMPUTED).count()
    return counts


# --- retrain -------------------------------------------------------------------------------------

def retrain_round(campaign: str, round_index: int, conn=None) -> dict:
    """Fine-tune once per round: a re-run finds the version this round registered and stops."""
    from motif_screen.db.documents import ModelVersion

    spec = load_spec(campaign)
    done = ModelVersion.objects(name=spec.model.name, config__campaign=campaign, config__round=round_index).first()
    if done is not None:
        return {"retrained": False, "reason": "this round was already retrained", "version": done.version,
                "promoted": done.promoted}
    results = list(OracleResult.objects(campaign=campaign, source=spec.oracle, run_status="successful"))
    prop = spec.target.property
    pairs = [(r.candidate.to_structure(), getattr(r, prop, None)) for r in results]
    pairs = [(s, v) for s, v in pairs if v is not None]
    if len(pairs) < 4 or spec.retrain_epochs == 0:
        return {"retrained": False, "reason": f"{len(pairs)} oracle results for {prop} (need at least 4)"}
    model, version = models.campaign_model(spec)
    return models.retrain_and_register(model, version, spec, [s for s, _ in pairs], np.array([v for _, v in pairs]),
                                       round_index=round_index)


# --- next round ----------------------------------------------------------------------------------

def round_funnel(spec: CampaignSpec, round_index: int) -> dict:
    """Hits and the acceleration factor: hit rate of acquisition picks over random controls."""
    picked = list(_round_candidates(spec.name, round_index, selection__in=list(keys.SELECTIONS)))
    computed = [d for d in picked if d.status == keys.STATUS_COMPUTED]

    def hits(docs):
        return sum(spec.target.is_hit((d.oracle or {}).get(spec.target.property)) for d in docs)

    by_acq = [d for d in computed if d.selection == keys.SELECTED_BY_ACQUISITION]
    controls = [d for d in computed if d.selection == keys.SELECTED_AS_CONTROL]
    hit_rate = hits(by_acq) / len(by_acq) if by_acq else None
    random_rate = hits(controls) / len(controls) if controls else None
    # Laplace-smoothed ratio, so a round whose controls found no hit still gives a finite estimate;
    # undefined when neither group found a hit (nothing was measured)
    accel = None
    if by_acq and controls and (hits(by_acq) or hits(controls)):
        accel = ((hits(by_acq) + 1) / (len(by_acq) + 2)) / ((hits(controls) + 1) / (len(controls) + 2))
    return {"computed": len(computed), "hits": hits(computed), "hit_rate": hit_rate,
            "random_hit_rate": random_rate, "acceleration": accel}


def next_round(campaign: str, round_index: int, conn=None) -> dict:
    from motif_screen.campaign.workflow import round_workflow

    spec = load_spec(campaign)
    funnel = round_funnel(spec, round_index)
    RoundRecord.objects(campaign=campaign, round=round_index).update_one(
        upsert=True, **{f"set__{k}": v for k, v in funnel.items()})
    spent = Candidate.objects(campaign=campaign, selection__in=list(keys.SELECTIONS)).count()
    total_hits = sum(r.hits or 0 for r in RoundRecord.objects(campaign=campaign))
    if round_index + 1 >= spec.rounds or spent >= spec.budget:
        set_campaign_status(campaign, "completed")
        return {**funnel, "next_round": None, "why": "rounds or budget used up", "workflow": None}
    if Candidate.objects(campaign=campaign, origin__round=round_index + 1).count():
        return {**funnel, "next_round": round_index + 1, "why": "already started", "workflow": None}
    return {**funnel, "next_round": round_index + 1, "total_hits": total_hits,
            "workflow": round_workflow(campaign, round_index + 1)}
