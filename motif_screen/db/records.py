"""Idempotent writes: candidates keyed by (campaign, fingerprint), oracle results by (candidate, source).

Every function here can be called again with the same arguments (a re-run Firework, a resumed
campaign) and leaves the database as one call would: no duplicates, no half-updated candidate.
Status changes follow ``keys.STATUS_TRANSITIONS`` and are applied atomically against the status
the candidate had, so two workers cannot both move the same candidate.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.errors import BulkWriteError, DuplicateKeyError

from motif_screen import keys
from motif_screen.db.documents import Candidate, OracleResult, Origin, Prediction, StatusChange, utcnow
from motif_screen.errors import InputError

DUPLICATE_KEY = 11000  # MongoDB's error code for an insert that repeats a unique key


def _finite_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def candidate_fields(structure, fingerprint: str | None = None) -> dict:
    """The derived, searchable fields of a structure (one place, used by upserts, rounds and tests)."""
    from motif_screen.structures.fingerprint import fingerprint as canonical_fingerprint

    return {
        "structure": structure.as_dict(),
        "formula": structure.composition.reduced_formula,
        "elements": sorted({el.symbol for el in structure.composition.elements}),
        "nsites": len(structure),
        "fingerprint": fingerprint or canonical_fingerprint(structure),
    }


def candidate_oid(campaign: str, fingerprint: str) -> ObjectId:
    """The id of the candidate (campaign, fingerprint): the same material gets the same id, so an
    insert repeated by a re-run, or by two workers at once, is refused by the ``_id`` index."""
    return ObjectId(hashlib.sha256(f"{campaign}\x00{fingerprint}".encode()).digest()[:12])


def upsert_candidate(
    campaign: str,
    structure,
    *,
    origin: dict,
    latent: Iterable[float] | None = None,
    fingerprint: str | None = None,
) -> tuple[Candidate, bool]:
    """Insert a proposed candidate unless (campaign, fingerprint) exists; returns (doc, created)."""
    fields = candidate_fields(structure, fingerprint)
    now = utcnow()
    origin_doc = Origin(**origin)
    origin_doc.validate()
    # mongoengine's documented way to its pymongo collection (an atomic upsert / aggregation)
    collection = Candidate._get_collection()
    on_insert = {
        "_id": candidate_oid(campaign, fields["fingerprint"]),
        **fields,
        "campaign": campaign,
        "origin": origin_doc.to_mongo().to_dict(),
        "latent": [float(x) for x in latent] if latent is not None else [],
        "status": keys.STATUS_PROPOSED,
        "history": [StatusChange(status=keys.STATUS_PROPOSED, at=now).to_mongo().to_dict()],
        "created": now,
        "updated": now,
    }
    try:
        result = collection.update_one(
            {"campaign": campaign, "fingerprint": fields["fingerprint"]},
            {"$setOnInsert": on_insert},
            upsert=True,
        )
        created = result.upserted_id is not None
    except DuplicateKeyError:  # inserted by another worker between our filter and our insert
        created = False
    doc = Candidate.objects.get(campaign=campaign, fingerprint=fields["fingerprint"])
    return doc, created


def decided_candidate(
    campaign: str, row: dict, *, status: str, reason: str, selection: str | None, acquisition: float | None
) -> dict:
    """The ``Candidate`` fields of a generated structure the screen has decided on, for
    :func:`insert_candidates`: ``row`` holds :func:`candidate_fields`, ``latent``, ``origin``,
    ``validity``, ``motifs``, ``motif_labels`` and ``predictions`` ({property: (mean, std)});
    non-finite predictions and scores are left out, never stored as numbers."""
    now = utcnow()
    predictions = {
        prop: Prediction(mean=mean, std=_finite_or_none(std))
        for prop, (mean, std) in row["predictions"].items()
        if _finite_or_none(mean) is not None
    }
    return {
        "id": candidate_oid(campaign, row["fingerprint"]),
        "campaign": campaign,
        **{k: row[k] for k in ("structure", "formula", "elements", "nsites", "fingerprint", "latent")},
        "origin": Origin(**row["origin"]),
        "predictions": predictions,
        "acquisition": _finite_or_none(acquisition),
        "selection": selection,
        "validity": row["validity"],
        "motifs": row["motifs"],
        "motif_labels": row["motif_labels"],
        "status": status,
        "status_reason": reason,
        "history": [
            StatusChange(status=keys.STATUS_PROPOSED, at=now),
            StatusChange(status=status, reason=reason, at=now),
        ],
        "created": now,
        "updated": now,
    }


def insert_candidates(documents: list[dict]) -> int:
    """Insert candidate documents (``Candidate`` fields, ids from :func:`candidate_oid`) in one
    unordered ``insert_many``; those already stored (a re-run) are left as they are. Returns how
    many were new. Each document is validated against the ``Candidate`` schema first, so nothing
    half-formed is written."""
    if not documents:
        return 0
    raw = []
    for fields in documents:
        doc = Candidate(**fields)
        doc.validate()
        raw.append(doc.to_mongo().to_dict())
    try:
        return len(Candidate._get_collection().insert_many(raw, ordered=False).inserted_ids)
    except BulkWriteError as exc:
        others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others:
            raise
        return int(exc.details.get("nInserted", 0))


def get_candidate(candidate_id) -> Candidate:
    try:
        oid = candidate_id if isinstance(candidate_id, ObjectId) else ObjectId(str(candidate_id))
    except (InvalidId, TypeError):
        raise InputError(f"{candidate_id!r} is not a candidate id") from None
    doc = Candidate.objects(id=oid).first()
    if doc is None:
        raise InputError(f"no candidate with id {candidate_id}")
    return doc


def set_status(candidate_id, status: str, reason: str | None = None, **fields) -> Candidate:
    """Move a candidate along its life cycle (atomic; repeating the same move is a no-op)."""
    if status not in keys.CANDIDATE_STATUSES:
        raise InputError(f"unknown status {status!r}; expected one of {', '.join(keys.CANDIDATE_STATUSES)}")
    doc = get_candidate(candidate_id)
    if doc.status == status:
        if fields:
            Candidate.objects(id=doc.id).update_one(
                **{f"set__{k}": v for k, v in fields.items()}, set__updated=utcnow()
            )
            doc.reload()
        return doc
    allowed_from = [s for s, nxt in keys.STATUS_TRANSITIONS.items() if status in nxt]
    updates = {f"set__{k}": v for k, v in fields.items()}
    n = Candidate.objects(id=doc.id, status__in=allowed_from).update_one(
        set__status=status,
        set__status_reason=reason,
        set__updated=utcnow(),
        push__history=StatusChange(status=status, reason=reason),
        **updates,
    )
    if n == 0:
        doc.reload()
        if doc.status != status:
            raise InputError(f"candidate {doc.id} cannot go from {doc.status} to {status}")
    doc.reload()
    return doc


def set_predictions(
    candidate_id, predictions: dict[str, tuple[float, float | None]], acquisition: float | None = None, **fields
) -> None:
    """Store predicted (mean, std) per property; non-finite predictions are refused, not stored."""
    values = {}
    for prop, (mean, std) in predictions.items():
        mean_f = _finite_or_none(mean)
        if mean_f is None:
            raise InputError(f"prediction for {prop} of candidate {candidate_id} is not a finite number")
        values[prop] = Prediction(mean=mean_f, std=_finite_or_none(std))
    updates = {f"set__{k}": v for k, v in fields.items()}
    Candidate.objects(id=get_candidate(candidate_id).id).update_one(
        set__predictions=values, set__acquisition=_finite_or_none(acquisition), set__updated=utcnow(), **updates
    )


ORACLE_VALUE_FIELDS = ("energy", "energy_per_atom", keys.FORMATION_ENERGY, keys.ENERGY_ABOVE_HULL, keys.BAND_GAP)


def record_oracle_result(
    candidate_id,
    source: str,
    *,
    run_status: str,
    energy=None,
    energy_per_atom=None,
    formation_energy_per_atom=None,
    energy_above_hull=None,
    band_gap=None,
    final_structure=None,
    task_id=None,
    task_ids: Iterable = (),
    fw_id=None,
    errors: Iterable[str] = (),
    functional: str | None = None,
    input_set: str | None = None,
    entry: dict | None = None,
    awaiting_references: Iterable[str] = (),
    stability: dict | None = None,
) -> OracleResult:
    """Upsert the result of one oracle on one candidate and move the candidate to computed/failed.

    Non-finite values are stored as missing, never as numbers; a "successful" run that delivered
    no finite value is recorded as failed with that reason.
    """
    if source not in keys.ORACLE_SOURCES:
        raise InputError(f"unknown oracle source {source!r}; expected one of {', '.join(keys.ORACLE_SOURCES)}")
    if run_status not in ("successful", "failed"):
        raise InputError(f"run_status must be 'successful' or 'failed', not {run_status!r}")
    cand = get_candidate(candidate_id)
    values = {
        "energy": _finite_or_none(energy),
        "energy_per_atom": _finite_or_none(energy_per_atom),
        keys.FORMATION_ENERGY: _finite_or_none(formation_energy_per_atom),
        keys.ENERGY_ABOVE_HULL: _finite_or_none(energy_above_hull),
        keys.BAND_GAP: _finite_or_none(band_gap),
    }
    errors = [str(e) for e in errors]
    if run_status == "successful" and all(v is None for v in values.values()):
        run_status, errors = "failed", errors + ["the oracle returned no finite value"]
    awaiting = sorted(set(awaiting_references)) if run_status == "successful" else []
    fs = final_structure.as_dict() if hasattr(final_structure, "as_dict") else (final_structure or {})
    OracleResult.objects(candidate=cand.id, source=source).update_one(
        upsert=True,
        set__campaign=cand.campaign,
        set__task_id=str(task_id) if task_id is not None else None,
        set__task_ids=[str(t) for t in task_ids],
        set__fw_id=fw_id,
        set__final_structure=fs,
        set__run_status=run_status,
        set__errors=errors,
        set__functional=functional,
        set__input_set=input_set,
        set__entry=entry or {},
        set__awaiting_references=awaiting,
        set__stability=stability or {},
        set__model_version=cand.origin.model_version if cand.origin else None,
        set__created=utcnow(),
        **{f"set__{k}": v for k, v in values.items()},
    )
    result = OracleResult.objects.get(candidate=cand.id, source=source)
    if run_status == "successful":
        oracle = {"source": source, **{k: v for k, v in values.items() if v is not None}}
        if awaiting:
            oracle["awaiting_references"] = awaiting
        set_status(cand.id, keys.STATUS_COMPUTED, oracle=oracle, task_ids=[str(t) for t in task_ids])
    else:
        reason = "; ".join(errors) or "the oracle run failed"
        set_status(
            cand.id,
            keys.STATUS_FAILED,
            reason=f"{source}: {reason}"[:2000],
            oracle={"source": source},
            task_ids=[str(t) for t in task_ids],
        )
    return result
