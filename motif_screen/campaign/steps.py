"""The steps of a campaign round: plain functions that take the query layer (and, where they need it,
a read-only view of the LaunchPad) and return data. Each is called by one Firetask and is safe to run
again.

generate_shard   one of the round's generation shards: proposes its chunks of structures with the
                 campaign's model and assesses each structure on its own (validity, motifs,
                 fingerprint, predictions); each chunk is stored as it ends;
select_round     merges every chunk of the round: de-duplication, novelty, motif filter,
                 acquisition, selection; writes every candidate in batches, screened or rejected
                 with the reason (the selected get ``selection``);
submit_round     says which candidates (and which missing elemental references) go to the oracle,
                 and marks the candidates submitted; the Firetask builds their workflows;
collect_round    records every submitted candidate of the round as computed or failed, from the
                 step that defines each value, with the failing step and its reason;
retrain_round    fine-tunes on the campaign's oracle results, registers and maybe promotes;
finish_round     writes the round's funnel record and ends the campaign after its last round.

Idempotence comes from the database: a candidate's id derives from (campaign, fingerprint), every
step only touches candidates in the status it expects, and a re-run of a finished step changes
nothing. A round reads and writes its candidates in batches of one chunk (``chunk_size``), so the
database sees a few operations per thousand candidates, whatever the round's size.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure

from motif_screen import keys
from motif_screen.campaign import learner, thermo
from motif_screen.campaign.launchpad import FireworksView, finished
from motif_screen.campaign.names import fw_name, generate_step
from motif_screen.campaign.spec import CampaignSpec, parse_spec
from motif_screen.db.repository import Repository, decode_chunk
from motif_screen.errors import InputError
from motif_screen.oracles.references import MissingPrototypeError, ground_state_structure
from motif_screen.oracles.taskdocs import defining_steps, step_name, values_from_taskdocs
from motif_screen.pretrained import SHIPPED, ensure_registered
from motif_screen.screening import CandidateDecision, ScreenSettings, assess, decide
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


# --- generate (one shard) ------------------------------------------------------------------------


def screen_settings(spec: CampaignSpec, round_index: int) -> ScreenSettings:
    return ScreenSettings(
        kind=spec.acquisition,
        kappa=spec.kappa,
        controls=spec.control_count(spec.round_budget(round_index)),
        seed=spec.seed * 1000 + round_index,
    )


def generate_shard(repo: Repository, campaign: str, round_index: int, shard: int = 0) -> dict:
    """Propose and assess the shard's chunks of the round, one chunk at a time, each stored as it ends.

    Per chunk: decode, validity, geometric motifs, fingerprints and the model's predictions for the
    valid structures — everything that depends on one candidate alone. Which shard computes a chunk
    changes nothing in it; a shard re-run after a crash skips the chunks already stored.
    """
    spec = load_spec(repo, campaign)
    if skipped := _skip_if_completed(repo, campaign):
        return skipped
    if not 0 <= shard < spec.shards:
        raise InputError(f"campaign {campaign} has {spec.shards} generation shards; there is no shard {shard}")
    repo.set_campaign_status(campaign, "running")
    if repo.round_selected(campaign, round_index):
        return {"skipped": "the round's candidates are already selected", "resumed": True}
    mine = spec.shard_chunks(shard)
    done = repo.chunks_stored(campaign, round_index)
    todo = [c for c in mine if c not in done]
    summary: dict = {"shard": shard, "chunks": len(mine), "resumed_chunks": len(mine) - len(todo), "generated": 0}
    if not todo:
        return summary
    model, version = learner.campaign_model(repo, spec)
    seeds = exploration_seeds(repo, spec, round_index)
    hull = thermo.known_hull(repo, spec.oracle) if spec.target.property == keys.ENERGY_ABOVE_HULL else None
    settings = screen_settings(spec, round_index)
    seconds: dict[str, float] = {}
    for chunk in _progress(todo, f"round {round_index} shard {shard + 1}/{spec.shards}"):
        rows, report, spent = chunk_rows(model, version, spec, round_index, chunk, seeds, hull, settings)
        repo.save_chunk(campaign, round_index, chunk, shard, rows, spent)
        summary["generated"] += len(rows)
        for key, value in report.items():
            summary[key] = summary.get(key, 0) + value
        for key, value in spent.items():
            seconds[key] = seconds.get(key, 0.0) + value
    return {**summary, "seconds": seconds}


def chunk_rows(model, version, spec: CampaignSpec, round_index: int, chunk: int, seeds, hull, settings):
    """(rows, generation report, seconds per phase) of one chunk: the records the selection reads."""
    from motif_screen.db.records import candidate_fields
    from motif_screen.structures.fingerprint import fingerprint

    clock = _Clock()
    proposals, report = learner.propose(model, spec, round_index, seeds, chunk=chunk)
    structures: list = [p.structure for p in proposals]
    clock.lap("generation")
    decisions = assess(structures, settings, needs_motifs=True)
    clock.lap("validity_and_motifs")
    valid = [d.index for d in decisions if not d.decision]
    predicted = _predictions(model, spec.target, hull, [structures[i] for i in valid])
    predictions = {i: predicted[position] for position, i in enumerate(valid)}
    clock.lap("prediction")
    rows = []
    for structure, proposal, d in zip(structures, proposals, decisions):
        try:
            key = fingerprint(structure)
        except InputError:  # no symmetry to read (e.g. no atoms): a key that still never repeats
            key = f"unreadable-{hashlib.sha1(repr(structure.as_dict()).encode()).hexdigest()[:20]}"
        rows.append(
            {
                **candidate_fields(structure, key),
                "latent": proposal.latent,
                "origin": {
                    "method": proposal.mode,
                    "parents": list(proposal.parents),
                    "model_name": spec.model.name,
                    "model_version": version,
                    "round": round_index,
                },
                "decision": d.decision,
                "detail": d.detail,
                "validity": d.validity or {},
                "motifs": d.motifs or {},
                "motif_labels": d.motif_labels,
                "predictions": predictions.get(d.index, {}),
            }
        )
    clock.lap("fingerprint")
    return rows, report, clock.seconds


def _predictions(model, target, hull: thermo.KnownHull | None, structures: list) -> dict[int, dict]:
    """position among ``structures`` -> {property: (mean, std)}, every head of the model.

    For a stability target the head's formation energy also becomes a predicted distance to the
    known hull of the candidate's composition (the same σ: the hull is known, the candidate is not).
    """
    if not structures:
        return {}
    preds = learner.predict(model, structures)
    if target.property == keys.ENERGY_ABOVE_HULL and hull is not None:
        mean, std = preds[target.learned_property]
        below = hull.formation_energies([s.composition for s in structures])
        preds[keys.ENERGY_ABOVE_HULL] = (mean - below, std)
    return {k: {p: (float(m[k]), float(sd[k])) for p, (m, sd) in preds.items()} for k in range(len(structures))}


def exploration_seeds(repo: Repository, spec: CampaignSpec, round_index: int) -> list:
    """Later rounds explore around the best oracle results so far (hits first)."""
    if round_index == 0 or not spec.generation.explore_after_first_round:
        return []
    prop = spec.target.property
    scored = [(d.oracle[prop], d) for d in repo.computed(spec.name) if (d.oracle or {}).get(prop) is not None]
    scored.sort(key=lambda t: t[0], reverse=spec.target.goal == "maximize")
    return [(str(d.id), d.to_structure()) for _, d in scored[:8]]


class _Clock:
    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now


# --- select (the whole round) --------------------------------------------------------------------


def select_round(repo: Repository, campaign: str, round_index: int) -> dict:
    """Merge the round's chunks and decide: uniqueness in the round, novelty, motif filter, scores, budget.

    Every proposal is written once, in its screened or rejected state with the reason, in batches;
    proposals whose fingerprint the campaign already holds are counted, not stored again. Refuses
    to run while a chunk is missing, naming the shards that owe it. The chunks are deleted only
    after every candidate is written, so a re-run after a crash writes the same candidates (those
    already written are left as they are) and never duplicates one.
    """
    spec = load_spec(repo, campaign)
    if skipped := _skip_if_completed(repo, campaign):
        return skipped
    if repo.round_selected(campaign, round_index):
        return {"screened": repo.count_round(campaign, round_index, status=keys.STATUS_SCREENED), "resumed": True}
    sizes = spec.chunk_sizes()
    stored = repo.chunks_stored(campaign, round_index)
    missing = [c for c in range(len(sizes)) if c not in stored]
    if missing:
        shards = sorted({c % spec.shards for c in missing})
        raise InputError(
            f"round {round_index} of {campaign} cannot be selected: generation shard(s) "
            f"{', '.join(f'{k + 1}/{spec.shards}' for k in shards)} have not stored chunk(s) "
            f"{', '.join(map(str, missing[:20]))}{' …' if len(missing) > 20 else ''}; re-run those shards' Fireworks "
            "(" + ", ".join(repr(fw_name(campaign, round_index, generate_step(k, spec.shards))) for k in shards) + ")"
        )
    clock = _Clock()
    payloads = repo.chunk_payloads(campaign, round_index)  # compressed: the whole round fits in memory
    seen = repo.fingerprints_outside_round(campaign, round_index)
    structures: list = []
    decisions: list[CandidateDecision] = []
    means: list[float] = []
    stds: list[float] = []
    kept: list[tuple[int, int]] = []
    identical = generated = 0
    version = None
    target = spec.target.property
    for chunk in range(len(sizes)):
        for j, row in enumerate(decode_chunk(payloads[chunk])):
            generated += 1
            version = row["origin"]["model_version"] if version is None else version
            if row["fingerprint"] in seen:
                identical += 1
                continue
            seen.add(row["fingerprint"])
            d = CandidateDecision(
                index=len(decisions),
                decision=row["decision"],
                detail=row["detail"],
                validity=row["validity"] or None,
                motifs=row["motifs"] or None,
                motif_labels=list(row["motif_labels"]),
            )
            decisions.append(d)
            structures.append(None if d.decision else Structure.from_dict(row["structure"]))
            mean, std = row["predictions"].get(target, (math.nan, math.nan))
            means.append(mean)
            stds.append(std)
            kept.append((chunk, j))
    clock.lap("read")
    result = decide(
        structures,
        decisions,
        (np.array(means, dtype=float), np.array(stds, dtype=float)),
        spec.target,
        spec.round_budget(round_index),
        references=repo.sent_structures(),
        motif_filter=spec.motif,
        settings=screen_settings(spec, round_index),
    )
    clock.lap("selection")
    del structures
    inserted = 0
    by_chunk: dict[int, list[tuple[int, int]]] = {}
    for k, (chunk, j) in enumerate(kept):
        by_chunk.setdefault(chunk, []).append((j, k))
    for chunk, members in by_chunk.items():
        rows = decode_chunk(payloads[chunk])
        inserted += repo.insert_candidates(
            [candidate_document(campaign, rows[j], result.decisions[k]) for j, k in members]
        )
    clock.lap("storage")
    counts = result.counts
    phase_seconds = {key: 0.0 for key in ("generation", "validity_and_motifs", "prediction", "fingerprint")}
    for info in stored.values():
        for key, value in info["seconds"].items():
            phase_seconds[key] = phase_seconds.get(key, 0.0) + value
    phase_seconds.update({f"selection_{key}": value for key, value in clock.seconds.items()})
    repo.update_round(
        campaign,
        round_index,
        generated=generated,
        identical_fingerprints=identical,
        shards=spec.shards,
        model_version=version,
        phase_seconds=phase_seconds,
        **{k: int(counts[k]) for k in ("valid", "unique", "novel", "screened")},
    )
    repo.mark_round_selected(campaign, round_index)
    repo.delete_chunks(campaign, round_index)
    return {
        **counts,
        "generated": generated,
        "identical_fingerprints": identical,
        "inserted": inserted,
        "decisions": result.decision_counts,
    }


def candidate_document(campaign: str, row: dict, d: CandidateDecision) -> dict:
    """The ``Candidate`` fields of a chunk row once the round has decided on it."""
    from motif_screen.db.records import decided_candidate

    screened = d.decision in (keys.DECISION_SELECTED, keys.DECISION_BELOW_CUTOFF)
    return decided_candidate(
        campaign,
        row,
        status=keys.STATUS_SCREENED if screened else keys.STATUS_REJECTED,
        reason=f"{d.decision}: {d.detail}" if d.detail else d.decision,
        selection=d.selected_by,
        acquisition=d.score,
    )


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
