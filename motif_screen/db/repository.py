"""The query layer: every read and write of campaigns, candidates, oracle results, rounds, model
versions and reference entries goes through a :class:`Repository` (maggma's idea: the queries are
written once, only the client changes).

A step receives the repository of its worker's connection; nothing outside :mod:`motif_screen.db`
touches a mongoengine document's ``objects`` or a raw collection. User text never becomes a
MongoDB operator: filters are built here from validated names, numbers and our own field names.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable

from mongoengine.errors import NotUniqueError

from motif_screen import keys
from motif_screen.db import model_versions, queries, records
from motif_screen.db.connection import Connection
from motif_screen.db.documents import (
    Campaign,
    Candidate,
    GroundStatePrototype,
    ModelVersion,
    OracleResult,
    ReferenceEntry,
    RoundChunk,
    RoundRecord,
    utcnow,
)
from motif_screen.errors import InputError
from motif_screen.structures.prototypes import PROTOTYPES

MAX_CHUNK_BYTES = 15_000_000  # a MongoDB document holds at most 16 MB


def _plain(value):
    """JSON for numpy scalars and arrays in chunk rows; anything else is a bug, said as such."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"a chunk row holds a {type(value).__name__}, which has no JSON form")


def decode_chunk(payload: bytes) -> list[dict]:
    """The rows a generation shard stored for one chunk (:meth:`Repository.save_chunk`)."""
    return json.loads(gzip.decompress(payload))


SENT_STATUSES = (keys.STATUS_SUBMITTED, keys.STATUS_COMPUTED, keys.STATUS_FAILED)


class Repository:
    """The queries of one open database (``conn``)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def flush(self) -> None:
        self.conn.flush()

    # --- campaigns ---------------------------------------------------------------------------

    def save_campaign(self, config: dict, *, target: dict) -> tuple[Campaign, bool]:
        """Create the campaign, or return the existing one if its config is identical; (doc, created).

        A different config under an existing name is refused: silently changing a running
        campaign would make its rounds incomparable.
        """
        name = config["name"]
        existing = Campaign.objects(name=name).first()
        if existing is not None:
            if existing.config != config:
                raise InputError(
                    f"campaign {name!r} already exists with other settings; choose another --campaign name"
                )
            return existing, False
        doc = Campaign(
            name=name,
            target=target,
            budget=config["budget"],
            rounds=config["rounds"],
            candidates_per_round=config["candidates_per_round"],
            oracle=config["oracle"],
            config=config,
            status="created",
        )
        try:
            doc.save()
        except NotUniqueError:  # created by another worker in the meantime
            return self.save_campaign(config, target=target)
        return doc, True

    def campaign_config(self, name: str) -> dict:
        doc = Campaign.objects(name=queries.validate_name(name, "campaign")).only("config").first()
        if doc is None:
            raise InputError(f"no campaign named {name!r} in the database")
        return dict(doc.config)

    def campaigns(self, name: str | None = None) -> list[Campaign]:
        if name:
            return list(Campaign.objects(name=queries.validate_name(name, "campaign")))
        return list(Campaign.objects.order_by("created"))

    def campaign_status(self, name: str) -> str | None:
        doc = Campaign.objects(name=name).only("status").first()
        return doc.status if doc else None

    def set_campaign_status(self, name: str, status: str) -> None:
        Campaign.objects(name=name).update_one(set__status=status, set__updated=utcnow())

    # --- candidates --------------------------------------------------------------------------

    def upsert_candidate(self, campaign: str, structure, *, origin: dict, latent=None) -> tuple[Candidate, bool]:
        return records.upsert_candidate(campaign, structure, origin=origin, latent=latent)

    def insert_candidates(self, documents: list[dict]) -> int:
        """Insert candidates in one batch (ids from ``records.candidate_oid``); returns how many were new."""
        return records.insert_candidates(documents)

    def fingerprints_outside_round(self, campaign: str, round_index: int) -> set[str]:
        """Fingerprints of the campaign's candidates from other rounds (one query, two fields a document)."""
        found = Candidate._get_collection().find(
            {"campaign": campaign, "origin.round": {"$ne": int(round_index)}}, {"fingerprint": 1, "_id": 0}
        )
        return {d["fingerprint"] for d in found}

    def candidate(self, candidate_id) -> Candidate:
        return records.get_candidate(candidate_id)

    def round_candidates(
        self, campaign: str, round_index: int, *, status: str | Iterable[str] | None = None, selected: bool = False
    ) -> list[Candidate]:
        return list(self._round_query(campaign, round_index, status, selected))

    def count_round(self, campaign: str, round_index: int, *, status: str | None = None, selected: bool = False) -> int:
        return self._round_query(campaign, round_index, status, selected).count()

    def _round_query(self, campaign, round_index, status, selected):
        flt = {"campaign": campaign, "origin__round": int(round_index)}
        if status is not None:
            flt["status__in"] = [status] if isinstance(status, str) else list(status)
        if selected:
            flt["selection__in"] = list(keys.SELECTIONS)
        return Candidate.objects(**flt)

    def cell_prototype_counts(self, campaign: str) -> dict[str, int]:
        """How many of the campaign's A B X3 candidates have each decoded-cell prototype (the pre-screen
        stores it with the motifs of valid cells; see structures.prototypes)."""
        name = queries.validate_name(campaign, "campaign")
        return {p: Candidate.objects(campaign=name, motifs__prototype=p).count() for p in PROTOTYPES}

    def count_selected(self, campaign: str) -> int:
        return Candidate.objects(campaign=campaign, selection__in=list(keys.SELECTIONS)).count()

    def computed(self, campaign: str) -> list[Candidate]:
        return list(Candidate.objects(campaign=campaign, status=keys.STATUS_COMPUTED))

    def oracle_calls_ended(self, campaign: str) -> list[Candidate]:
        """Candidates whose oracle calculation has ended: computed, or failed (a call that found nothing)."""
        return list(Candidate.objects(campaign=campaign, status__in=[keys.STATUS_COMPUTED, keys.STATUS_FAILED]))

    def candidates(self, campaign: str, *fields: str, limit: int | None = None) -> list[Candidate]:
        query = Candidate.objects(campaign=queries.validate_name(campaign, "campaign"))
        query = query.only(*fields) if fields else query
        return list(query.limit(int(limit)) if limit else query)

    def sent_structures(self) -> list:
        """Everything already sent to an oracle, in any campaign: never submit the same material twice."""
        return [d.to_structure() for d in Candidate.objects(status__in=list(SENT_STATUSES)).only("structure")]

    def set_status(self, candidate_id, status: str, reason: str | None = None, **fields) -> Candidate:
        return records.set_status(candidate_id, status, reason=reason, **fields)

    def set_predictions(self, candidate_id, predictions: dict, acquisition=None, **fields) -> None:
        records.set_predictions(candidate_id, predictions, acquisition=acquisition, **fields)

    def update_candidate(self, candidate_id, **fields) -> None:
        """Set plain fields (screening details, hand-off bookkeeping) without a status change."""
        Candidate.objects(id=records.get_candidate(candidate_id).id).update_one(
            set__updated=utcnow(), **{f"set__{k}": v for k, v in fields.items()}
        )

    def add_task_ids(self, candidate_id, task_ids: Iterable) -> None:
        cid = records.get_candidate(candidate_id).id
        for task_id in task_ids:
            Candidate.objects(id=cid).update_one(add_to_set__task_ids=str(task_id))

    def find(self, query: queries.CandidateQuery) -> list[Candidate]:
        return queries.find_candidates(query)

    def funnel_counts(self, campaign: str | None = None) -> dict:
        return queries.funnel_counts(campaign)

    # --- oracle results ----------------------------------------------------------------------

    def record_oracle_result(self, candidate_id, source: str, **values) -> OracleResult:
        return records.record_oracle_result(candidate_id, source, **values)

    def oracle_result(self, candidate_id, source: str) -> OracleResult | None:
        return OracleResult.objects(candidate=records.get_candidate(candidate_id).id, source=source).first()

    def successful_results(self, campaign: str | None, source: str) -> list[OracleResult]:
        return queries.successful_results([source], campaign)

    def results_of_systems(
        self, source: str, functional: str, input_set: str, elements: Iterable[str]
    ) -> list[OracleResult]:
        """Successful results of one source/functional/input set whose elements lie within ``elements``."""
        allowed = sorted(set(elements))
        found = OracleResult.objects(source=source, functional=functional, input_set=input_set, run_status="successful")
        return [r for r in found if r.entry and set(r.entry.get("composition", {})) <= set(allowed)]

    def results_with_settings(self, source: str, functional: str, input_set: str) -> list[OracleResult]:
        return list(
            OracleResult.objects(source=source, functional=functional, input_set=input_set, run_status="successful")
        )

    def result_settings(self, source: str) -> list[tuple[str, str]]:
        """The (functional, input set) pairs that successful results of ``source`` were computed with."""
        found = OracleResult.objects(source=source, run_status="successful").only("functional", "input_set")
        return sorted({(r.functional, r.input_set) for r in found if r.functional})

    def update_result(
        self, result: OracleResult, *, history: dict | None = None, candidate_oracle: dict | None = None, **fields
    ) -> None:
        """Change stored values of a result (formation energy filled in, distance to the hull moved)."""
        updates = {f"set__{k}": v for k, v in fields.items()}
        if history is not None:
            updates["push__hull_history"] = history
        OracleResult.objects(id=result.id).update_one(**updates)
        if candidate_oracle:
            Candidate.objects(id=result.candidate.id).update_one(
                set__updated=utcnow(), **{f"set__oracle__{k}": v for k, v in candidate_oracle.items()}
            )

    # --- atomate task documents --------------------------------------------------------------

    @property
    def tasks(self):
        """atomate's ``tasks`` collection (raw pymongo: it is atomate's schema, not ours)."""
        return self.conn.db[self.conn.tasks_collection]

    def task_documents(self, candidate_id) -> list[dict]:
        return list(self.tasks.find({keys.TASKDOC_CANDIDATE_ID: str(candidate_id)}))

    def task_documents_in(self, directory: str) -> list[dict]:
        """Task documents whose ``dir_name`` (``host:/path``) names ``directory``, newest last."""
        found = self.tasks.find({"dir_name": {"$regex": f"(^|:){re.escape(directory)}$"}})
        return sorted(found, key=lambda d: str(d.get("task_id")))

    # --- a round's generation chunks, waiting for its selection -------------------------------

    def save_chunk(
        self, campaign: str, round_index: int, chunk: int, shard: int, rows: list[dict], seconds: dict
    ) -> None:
        """Store what one chunk of a generation shard computed (replaces an earlier try of the same chunk)."""
        payload = gzip.compress(json.dumps(rows, default=_plain, allow_nan=True).encode(), compresslevel=3)
        if len(payload) > MAX_CHUNK_BYTES:
            raise InputError(
                f"chunk {chunk} of round {round_index} of {campaign} holds {len(payload) / 1e6:.1f} MB compressed, "
                f"more than a MongoDB document may ({MAX_CHUNK_BYTES / 1e6:.0f} MB): lower the campaign's chunk_size"
            )
        RoundChunk.objects(campaign=campaign, round=int(round_index), chunk=int(chunk)).update_one(
            upsert=True,
            set__shard=int(shard),
            set__size=len(rows),
            set__payload=payload,
            set__seconds={k: float(v) for k, v in seconds.items()},
            set__created=utcnow(),
        )

    def chunks_stored(self, campaign: str, round_index: int) -> dict[int, dict]:
        """chunk -> {"size", "shard", "seconds"} of the chunks stored for the round (no payloads)."""
        found = RoundChunk.objects(campaign=campaign, round=int(round_index)).only("chunk", "size", "shard", "seconds")
        return {c.chunk: {"size": c.size, "shard": c.shard, "seconds": dict(c.seconds or {})} for c in found}

    def chunk_payloads(self, campaign: str, round_index: int) -> dict[int, bytes]:
        """chunk -> its compressed rows (:func:`decode_chunk` reads them), every chunk of the round in one query."""
        found = RoundChunk._get_collection().find(
            {"campaign": campaign, "round": int(round_index)}, {"chunk": 1, "payload": 1, "_id": 0}
        )
        return {int(d["chunk"]): bytes(d["payload"]) for d in found}

    def delete_chunks(self, campaign: str, round_index: int) -> int:
        return RoundChunk.objects(campaign=campaign, round=int(round_index)).delete()

    # --- rounds ------------------------------------------------------------------------------

    def update_round(self, campaign: str, round_index: int, **fields) -> None:
        RoundRecord.objects(campaign=campaign, round=int(round_index)).update_one(
            upsert=True, **{f"set__{k}": v for k, v in fields.items()}
        )

    def round_selected(self, campaign: str, round_index: int) -> bool:
        """Whether the round's selection has written all of its candidates."""
        return RoundRecord.objects(campaign=campaign, round=int(round_index), selected=True).count() > 0

    def mark_round_selected(self, campaign: str, round_index: int) -> None:
        self.update_round(campaign, round_index, selected=True)

    def rounds(self, campaign: str) -> list[RoundRecord]:
        return list(RoundRecord.objects(campaign=campaign).order_by("round"))

    # --- model versions ----------------------------------------------------------------------

    def model_version(self, name: str, version: int | None = None) -> ModelVersion:
        """``version`` of ``name``; None: the latest promoted version (else the latest)."""
        return model_versions.find(name, version)

    def model_of_round(self, name: str, campaign: str, round_index: int) -> ModelVersion | None:
        return model_versions.of_round(name, campaign, round_index)

    def add_model_version(self, name: str, checkpoint: bytes, **fields) -> ModelVersion:
        return model_versions.add(name, checkpoint, **fields)

    # --- reference entries (elemental references and competing phases) -----------------------

    def add_reference(self, key: str, **fields) -> tuple[ReferenceEntry, bool]:
        """Insert or update the entry keyed ``key``; returns (doc, created)."""
        # mongoengine's documented way to its pymongo collection (an atomic upsert / aggregation)
        result = ReferenceEntry._get_collection().update_one(
            {"key": key},
            {"$set": {k: v for k, v in ReferenceEntry(key=key, **fields).to_mongo().to_dict().items() if k != "_id"}},
            upsert=True,
        )
        return ReferenceEntry.objects.get(key=key), result.upserted_id is not None

    def reference(self, key: str) -> ReferenceEntry | None:
        return ReferenceEntry.objects(key=key).first()

    def references(
        self,
        *,
        source: str | None = None,
        functional: str | None = None,
        input_set: str | None = None,
        elements: Iterable[str] | None = None,
        elemental: bool | None = None,
        status: str | None = "computed",
    ) -> list[ReferenceEntry]:
        """Entries matching the given settings whose elements all lie within ``elements``."""
        flt = {}
        for name, value in (
            ("source", source),
            ("functional", functional),
            ("input_set", input_set),
            ("is_elemental", elemental),
            ("status", status),
        ):
            if value is not None:
                flt[name] = value
        found = ReferenceEntry.objects(**flt).order_by("chemsys", "created")
        if elements is None:
            return list(found)
        allowed = set(elements)
        return [e for e in found if set(e.elements) <= allowed]

    def set_prototype(self, element: str, structure, origin: str) -> None:
        """The user's ground-state structure for ``element`` (replaces an earlier one)."""
        GroundStatePrototype.objects(element=element).update_one(
            upsert=True, set__structure=structure.as_dict(), set__origin=origin, set__created=utcnow()
        )

    def prototype(self, element: str):
        """The user's ground-state structure for ``element`` as a pymatgen Structure, or None."""
        from pymatgen.core import Structure

        doc = GroundStatePrototype.objects(element=element).first()
        return Structure.from_dict(doc.structure) if doc else None
