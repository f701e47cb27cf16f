"""The steps of a campaign round: plain functions that take the query layer (and, where they need it,
a read-only view of the LaunchPad) and return data. Each is called by one Firetask and is safe to run
again.

generate_round   proposes structures with the campaign's model and stores them (proposed);
prescreen_round  validity, de-duplication, novelty, predictions, motifs, acquisition, selection
                 (screened / rejected with a reason; the selected get ``selection``);
submit_round     says which candidates (and which missing elemental references) go to the oracle,
                 and marks the candidates submitted; the Firetask builds their workflows;
collect_round    records every submitted candidate of the round as computed or failed, from the
                 step that defines each value, with the failing step and its reason;
retrain_round    fine-tunes on the campaign's oracle results, registers and maybe promotes;
finish_round     writes the round's funnel record and ends the campaign after its last round.

Idempotence comes from the database: candidates are upserted by fingerprint, every step only
touches candidates in the status it expects, and a re-run of a finished step changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from motif_screen import keys
from motif_screen.campaign import learner, thermo
from motif_screen.campaign.launchpad import FireworksView, finished
from motif_screen.campaign.spec import CampaignSpec, parse_spec
from motif_screen.db.repository import Repository
from motif_screen.errors import InputError
from motif_screen.oracles.references import MissingPrototypeError, ground_state_structure
from motif_screen.oracles.taskdocs import defining_steps, step_name, values_from_taskdocs
from motif_screen.pretrained import SHIPPED, ensure_registered
from motif_screen.screening import ScreenSettings, screen
from motif_screen.settings import get_settings

log = logging.getLogger(__name__)
COMPLETED = "completed"


def load_spec(repo: Repository, campaign: str) -> CampaignSpec:
    return parse_spec(repo.campaign_config(campaign))


def _progress(iterable, desc: str, total: int | None = None):
    if not get_settings().progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def _skip_if_completed(repo: Repository, campaign: str) -> dict | None:
    if repo.campaign_status(campaign) == COMPLETED:
        return {"skipped": "the campaign is completed"}
    return None


# --- create --------------------------------------------------------------------------------------


def create_campaign(repo: Repository, spec: CampaignSpec) -> dict:
    """Store the campaign (once) and register the shipped model it names, if it is a shipped one."""
    registered = False
    if spec.model.name in SHIPPED:
        _, registered = ensure_registered(spec.model.name)
    learner.check_model(repo, spec)
    _, created = repo.save_campaign(spec.model_dump(mode="json"), target=spec.target.to_dict())
    return {"campaign": spec.name, "created": created, "registered_shipped_model": registered}


# --- generate ------------------------------------------------------------------------------------


def generate_round(repo: Repository, campaign: str, round_index: int) -> dict:
    """Propose ``candidates_per_round`` structures; deterministic for (campaign seed, round)."""
    spec = load_spec(repo, campaign)
    if skipped := _skip_if_completed(repo, campaign):
        return skipped
    repo.set_campaign_status(campaign, "running")
    existing = repo.count_round(campaign, round_index)
    if existing:
        log.info("round %d of %s already has %d candidates; not generating again", round_index, campaign, existing)
        return {"generated": existing, "inserted": 0, "resumed": True}
    model, version = learner.campaign_model(repo, spec)
    proposals, report = learner.propose(model, spec, round_index, seeds=exploration_seeds(repo, spec, round_index))
    inserted = 0
    for prop in _progress(proposals, f"store round {round_index}"):
        _, created = repo.upsert_candidate(
            campaign,
            prop.structure,
            latent=prop.latent,
            origin={
                "method": prop.mode,
                "parents": list(prop.parents),
                "model_name": spec.model.name,
                "model_version": version,
                "round": round_index,
            },
        )
        inserted += int(created)
    repo.update_round(campaign, round_index, generated=len(proposals), model_version=version)
    return {
        "generated": len(proposals),
        "inserted": inserted,
        "identical_fingerprints": len(proposals) - inserted,
        **report,
    }


def exploration_seeds(repo: Repository, spec: CampaignSpec, round_index: int) -> list:
    """Later rounds explore around the best oracle results so far (hits first)."""
    if round_index == 0 or not spec.generation.explore_after_first_round:
        return []
    prop = spec.target.property
    scored = [(d.oracle[prop], d) for d in repo.computed(spec.name) if (d.oracle or {}).get(prop) is not None]
    scored.sort(key=lambda t: t[0], reverse=spec.target.goal == "maximize")
    return [(str(d.id), d.to_structure()) for _, d in scored[:8]]


# --- prescreen -----------------------------------------------------------------------------------


def _predictor(model, target, hull: thermo.KnownHull | None, stash: dict):
    """The screen calls this on the survivors only; every property is kept for the database.

    For a stability target the head's formation energy becomes a predicted distance to the known
    hull of the candidate's composition (the same σ: the hull is known, the candidate is not).
    """
    learned = target.learned_property

    def predict(structures):
        preds = learner.predict(model, structures)
        if target.property == keys.ENERGY_ABOVE_HULL and hull is not None:
            mean, std = preds[learned]
            below = hull.formation_energies([s.composition for s in structures])
            preds[keys.ENERGY_ABOVE_HULL] = (mean - below, std)
        for k, s in enumerate(structures):
            stash[id(s)] = {p: (float(m[k]), float(sd[k])) for p, (m, sd) in preds.items()}
        return {target.property: preds[target.property]}

    return predict


def prescreen_round(repo: Repository, campaign: str, round_index: int) -> dict:
    """Screen the round's proposals and write every decision back (rejected ones with the reason)."""
    spec = load_spec(repo, campaign)
    if skipped := _skip_if_completed(repo, campaign):
        return skipped
    docs = repo.round_candidates(campaign, round_index, status=keys.STATUS_PROPOSED)
    if not docs:
        return {"screened": repo.count_round(campaign, round_index, status=keys.STATUS_SCREENED), "resumed": True}
    structures = [d.to_structure() for d in docs]
    model, _ = learner.campaign_model(repo, spec)
    budget = spec.round_budget(round_index)
    stash: dict = {}
    hull = thermo.known_hull(repo, spec.oracle) if spec.target.property == keys.ENERGY_ABOVE_HULL else None
    settings = ScreenSettings(
        kind=spec.acquisition,
        kappa=spec.kappa,
        controls=spec.control_count(budget),
        seed=spec.seed * 1000 + round_index,
    )
    result = screen(
        structures,
        _predictor(model, spec.target, hull, stash),
        spec.target,
        budget,
        references=repo.sent_structures(),
        motif_filter=spec.motif,
        settings=settings,
    )
    for doc, structure, d in _progress(list(zip(docs, structures, result.decisions)), f"prescreen round {round_index}"):
        extra = {"validity": d.validity or {}, "motifs": d.motifs or {}, "motif_labels": d.motif_labels}
        if id(structure) in stash:
            repo.set_predictions(doc.id, stash[id(structure)], acquisition=d.score, **extra)
        else:
            repo.update_candidate(doc.id, **extra)
        reason = f"{d.decision}: {d.detail}" if d.detail else d.decision
        if d.decision in (keys.DECISION_SELECTED, keys.DECISION_BELOW_CUTOFF):
            repo.set_status(doc.id, keys.STATUS_SCREENED, reason=reason, selection=d.selected_by)
        else:
            repo.set_status(doc.id, keys.STATUS_REJECTED, reason=reason)
    counts = result.counts
    repo.update_round(campaign, round_index, **{k: int(counts[k]) for k in ("valid", "unique", "novel", "screened")})
    return {**counts, "decisions": result.decision_counts}


# --- submit --------------------------------------------------------------------------------------


@dataclass
class Handoff:
    """What the submit Firetask turns into oracle workflows."""

    candidates: list[dict] = field(default_factory=list)  # {"id", "structure", "priority", "model_version"}
    references: list[dict] = field(default_factory=list)  # {"key", "element", "structure"}
    no_reference: dict[str, str] = field(default_factory=dict)  # element -> why it cannot be computed
    already_submitted: int = 0

    def summary(self) -> dict:
        return {
            "submitted": len(self.candidates),
            "already_submitted": self.already_submitted,
            "references": [r["element"] for r in self.references],
            "no_reference": self.no_reference,
        }


def reference_request_key(source: str, preset: str, element: str) -> str:
    """The key of an elemental reference the campaign computes itself (one per source, preset, element)."""
    return thermo.reference_key("computed", source, preset, element)


def submit_round(
    repo: Repository, fireworks: FireworksView | None, campaign: str, round_index: int, preset: str | None = None
) -> Handoff:
    """The selected candidates not yet on the LaunchPad, and the elemental references they still lack.

    Candidates move to ``submitted`` here; a re-run hands off only those whose workflows never
    reached the LaunchPad (a worker died between this step and FireWorks storing its result).
    """
    spec = load_spec(repo, campaign)
    plan = Handoff()
    if _skip_if_completed(repo, campaign):
        return plan
    selected = repo.round_candidates(
        campaign, round_index, selected=True, status=[keys.STATUS_SCREENED, keys.STATUS_SUBMITTED]
    )
    submitted = [str(d.id) for d in selected if d.status == keys.STATUS_SUBMITTED]
    on_lpad = set(fireworks.of_candidates(submitted)) if fireworks else set(submitted)
    todo = [d for d in selected if d.status == keys.STATUS_SCREENED or str(d.id) not in on_lpad]
    plan.already_submitted = len(selected) - len(todo)
    elements = set()
    for doc in todo:
        plan.candidates.append(
            {
                "id": str(doc.id),
                "structure": doc.to_structure(),
                "priority": doc.acquisition,
                "model_version": doc.origin.model_version if doc.origin else None,
            }
        )
        elements.update(doc.elements)
    if spec.oracle == keys.SOURCE_VASP and preset:
        plan.references, plan.no_reference = missing_references(repo, fireworks, sorted(elements), preset)
    for doc in todo:
        repo.set_status(doc.id, keys.STATUS_SUBMITTED)
    repo.update_round(campaign, round_index, submitted=len(selected))
    return plan


def missing_references(
    repo: Repository, fireworks: FireworksView | None, elements: list[str], preset: str
) -> tuple[list[dict], dict[str, str]]:
    """Elemental references no campaign has computed or submitted with this preset yet, and the
    elements for which none can be computed (no ground-state structure), with why.

    Each reference is recorded as ``submitted`` at once, so another round or campaign does not
    submit it again. A candidate with an element that cannot be computed is still handed off: it
    ends *computed, awaiting references* until the user adds one (``motif-screen references add``).
    """
    wanted, impossible = [], {}
    for element in elements:
        key = reference_request_key(keys.SOURCE_VASP, preset, element)
        existing = repo.reference(key)
        if existing is not None and existing.status == "computed":
            continue
        if (
            existing is not None
            and existing.status == "submitted"
            and (fireworks is None or fireworks.of_references([key]))
        ):
            continue  # in flight (a failed one, or one whose workflow never reached the LaunchPad, is retried)
        try:
            structure = repo.prototype(element) or ground_state_structure(element)
        except MissingPrototypeError as exc:
            impossible[element] = str(exc)
            log.warning("%s", exc)
            continue
        repo.add_reference(
            key,
            source=keys.SOURCE_VASP,
            functional="pending",
            input_set="pending",
            formula=element,
            elements=[element],
            chemsys=element,
            is_elemental=True,
            origin="computed",
            status="submitted",
        )
        wanted.append({"key": key, "element": element, "structure": structure})
    return wanted, impossible


# --- collect -------------------------------------------------------------------------------------


def collect_round(repo: Repository, fireworks: FireworksView | None, campaign: str, round_index: int) -> dict:
    """Every submitted candidate of the round whose workflow has finished leaves computed or failed.

    A failed candidate whose workflow was re-run (``lpad rerun_fws`` after a fix) and now finished
    cleanly is recorded again and becomes computed. A fizzled step (or one stopped because its
    parent fizzled) fails the candidate with the step's name and reason; a finished VASP workflow
    is read from the step that defines each value (energies from the static, the band gap from the
    uniform NSCF); references computed for the round are stored, and formation energies and
    distances to the hull are brought up to date.
    """
    spec = load_spec(repo, campaign)
    counts = {"computed": 0, "failed": 0, "still_running": 0, "references": 0}
    pending = {
        str(d.id): d
        for d in repo.round_candidates(
            campaign, round_index, selected=True, status=[keys.STATUS_SUBMITTED, keys.STATUS_FAILED]
        )
    }
    workflows = fireworks.of_candidates(list(pending)) if fireworks else {}
    if spec.oracle == keys.SOURCE_VASP:
        counts["references"] = collect_references(repo, fireworks)
    for cid, doc in pending.items():
        fws = workflows.get(cid, [])
        if fws and doc.fw_id is None:
            repo.update_candidate(cid, fw_id=fws[0].fw_id)
        if fireworks is not None and fws and not finished(fws):
            counts["still_running"] += int(doc.status == keys.STATUS_SUBMITTED)
            continue
        failure = fireworks.failure(fws) if fireworks and fws else None
        if doc.status == keys.STATUS_FAILED and (failure or not fws):
            continue  # failed before and still failed: already recorded with its reason
        if failure or (fireworks is not None and not fws):
            repo.record_oracle_result(
                cid,
                spec.oracle,
                run_status="failed",
                fw_id=fws[0].fw_id if fws else None,
                task_ids=doc.task_ids or [],
                errors=[failure or "its oracle Fireworks are not on the LaunchPad"],
            )
            counts["failed"] += 1
            continue
        if spec.oracle == keys.SOURCE_VASP:
            record_vasp_result(repo, doc, fw_id=fws[0].fw_id if fws else None)
        elif repo.oracle_result(cid, spec.oracle) is None:
            repo.record_oracle_result(
                cid,
                spec.oracle,
                run_status="failed",
                fw_id=fws[0].fw_id if fws else None,
                errors=["its oracle Firework finished without recording a result"],
            )
        counts["computed" if repo.candidate(cid).status == keys.STATUS_COMPUTED else "failed"] += 1
    counts.update(thermo.refresh_all(repo, spec.oracle))
    repo.update_round(
        campaign, round_index, computed=repo.count_round(campaign, round_index, status=keys.STATUS_COMPUTED)
    )
    return counts


def record_vasp_result(repo: Repository, candidate, fw_id: int | None = None):
    """The candidate's OracleResult from its atomate task documents, each value from its defining step."""
    docs = repo.task_documents(candidate.id)
    defines = (candidate.handoff or {}).get("defines")
    if not defines:
        raise InputError(f"candidate {candidate.id} names no workflow steps: it was not handed off by motif_screen")
    if not docs:
        return repo.record_oracle_result(
            candidate.id,
            keys.SOURCE_VASP,
            run_status="failed",
            fw_id=fw_id,
            errors=["its workflow finished but wrote no task document"],
        )
    values = values_from_taskdocs(docs, defines)
    if values["run_status"] == "successful" and values.get("entry"):
        values.update(thermo.stability_values(repo, keys.SOURCE_VASP, thermo.entry_from_dict(values["entry"])))
    return repo.record_oracle_result(
        candidate.id,
        keys.SOURCE_VASP,
        fw_id=fw_id,
        **{
            k: values.get(k)
            for k in (
                "run_status",
                "errors",
                "energy",
                "energy_per_atom",
                keys.FORMATION_ENERGY,
                keys.ENERGY_ABOVE_HULL,
                keys.BAND_GAP,
                "final_structure",
                "task_id",
                "task_ids",
                "functional",
                "input_set",
                "entry",
                "awaiting_references",
                "stability",
            )
            if k in values
        },
    )


def collect_references(repo: Repository, fireworks: FireworksView | None) -> int:
    """Store every submitted elemental reference whose workflow finished; failures say why."""
    pending = repo.references(source=keys.SOURCE_VASP, status="submitted")
    workflows = fireworks.of_references([r.key for r in pending]) if fireworks else {}
    stored = 0
    for ref in pending:
        fws = workflows.get(ref.key, [])
        if fireworks is not None and fws and not finished(fws):
            continue
        docs = list(repo.tasks.find({keys.TASKDOC_REFERENCE: ref.key}))
        failure = fireworks.failure(fws) if fireworks and fws else None
        if failure or not docs:
            repo.add_reference(
                ref.key,
                **_reference_fields(ref),
                status="failed",
                errors=[failure or "its workflow wrote no task document"],
            )
            continue
        steps = sorted({step_name(d) for d in docs}, key=lambda s: [step_name(d) for d in docs].index(s))
        values = values_from_taskdocs([{**d, keys.TASKDOC_CANDIDATE_ID: ref.key} for d in docs], defining_steps(steps))
        if values["run_status"] != "successful":
            repo.add_reference(ref.key, **_reference_fields(ref), status="failed", errors=values["errors"])
            continue
        thermo.store_reference(
            repo,
            keys.SOURCE_VASP,
            thermo.entry_from_dict(values["entry"]),
            origin="computed",
            key=ref.key,
            task_id=values["task_id"],
            fw_id=fws[0].fw_id if fws else None,
        )
        stored += 1
    return stored


def _reference_fields(ref) -> dict:
    return {
        k: getattr(ref, k)
        for k in ("source", "functional", "input_set", "formula", "elements", "chemsys", "is_elemental", "origin")
    }


# --- retrain -------------------------------------------------------------------------------------


def retrain_round(repo: Repository, campaign: str, round_index: int) -> dict:
    """Fine-tune once per round: a re-run finds the version this round registered and stops."""
    spec = load_spec(repo, campaign)
    if skipped := _skip_if_completed(repo, campaign):
        return skipped
    done = repo.model_of_round(spec.model.name, campaign, round_index)
    if done is not None:
        return {
            "retrained": False,
            "reason": "this round was already retrained",
            "version": done.version,
            "promoted": done.promoted,
        }
    prop = spec.target.learned_property
    pairs = [
        (r.candidate.to_structure(), getattr(r, prop, None)) for r in repo.successful_results(campaign, spec.oracle)
    ]
    pairs = [(s, v) for s, v in pairs if v is not None]
    if len(pairs) < 4 or spec.retrain_epochs == 0:
        return {"retrained": False, "reason": f"{len(pairs)} oracle results for {prop} (need at least 4)"}
    model, version = learner.campaign_model(repo, spec)
    return learner.retrain_and_register(
        model, version, spec, [s for s, _ in pairs], np.array([v for _, v in pairs]), round_index=round_index
    )


# --- finish the round ----------------------------------------------------------------------------


def round_funnel(repo: Repository, spec: CampaignSpec, round_index: int) -> dict:
    """Hits and the acceleration factor: hit rate of acquisition picks over random controls."""
    picked = repo.round_candidates(spec.name, round_index, selected=True)
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
    awaiting = sum(bool((d.oracle or {}).get("awaiting_references")) for d in computed)
    return {
        "computed": len(computed),
        "hits": hits(computed),
        "hit_rate": hit_rate,
        "random_hit_rate": random_rate,
        "acceleration": accel,
        "awaiting_references": awaiting,
    }


def finish_round(repo: Repository, campaign: str, round_index: int) -> dict:
    """Write the round's funnel; after the last round (or with the budget spent) the campaign is completed."""
    spec = load_spec(repo, campaign)
    if repo.campaign_status(campaign) == COMPLETED:
        return {"skipped": "the campaign is completed"}
    funnel = round_funnel(repo, spec, round_index)
    repo.update_round(campaign, round_index, **{k: v for k, v in funnel.items() if k != "awaiting_references"})
    spent = repo.count_selected(campaign)
    if round_index + 1 >= spec.rounds or spent >= spec.budget:
        repo.set_campaign_status(campaign, COMPLETED)
        return {**funnel, "next_round": None, "why": "rounds or budget used up"}
    return {**funnel, "next_round": round_index + 1}
