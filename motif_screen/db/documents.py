"""mongoengine documents: campaigns, candidates, oracle results, model versions, round records.

Field names of the candidate life cycle and oracle sources come from :mod:`motif_screen.keys`.
Every write that can be repeated is an upsert on a natural key, so re-running never duplicates.
"""

from __future__ import annotations

import datetime as _dt

from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    FileField,
    FloatField,
    IntField,
    ListField,
    MapField,
    ReferenceField,
    StringField,
)

from motif_screen import keys

# indexes of earlier schema versions that must go: (campaign, fingerprint) was a unique index, which
# mongomock enforces by scanning the collection on every insert (see Candidate.meta)
OBSOLETE_INDEXES = {keys.COLL_CANDIDATES: ("campaign_1_fingerprint_1",)}


def drop_obsolete_indexes(db) -> list[str]:
    """Drop the indexes of earlier schema versions from ``db`` (a pymongo Database); returns their names."""
    dropped = []
    for collection, names in OBSOLETE_INDEXES.items():
        if collection not in db.list_collection_names():
            continue
        present = db[collection].index_information()
        for name in names:
            if name in present:
                db[collection].drop_index(name)
                dropped.append(f"{collection}.{name}")
    return dropped


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


class Campaign(Document):
    meta = {"collection": keys.COLL_CAMPAIGNS, "indexes": ["status", "-created"]}

    name = StringField(required=True, unique=True, regex=r"^[A-Za-z0-9_.\-]{1,64}$")
    target = DictField(required=True)  # screening.TargetSpec as a mapping: property, goal, lower, upper
    budget = IntField(required=True, min_value=1)  # oracle calculations in total
    rounds = IntField(required=True, min_value=1)
    candidates_per_round = IntField(min_value=1, default=1000)
    status = StringField(choices=keys.CAMPAIGN_STATUSES, default="created")
    oracle = StringField(choices=keys.ORACLE_SOURCES, default=keys.SOURCE_VASP)
    config = DictField()  # generation, screening and hand-off parameters, as given
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow)


class Origin(EmbeddedDocument):
    method = StringField(required=True)  # generation mode: prior, perturb, interpolate, guided, ...
    parents = ListField(StringField())  # candidate ids or external ids (e.g. perov-5 material_id)
    model_name = StringField()
    model_version = IntField()
    round = IntField(min_value=0)


class Prediction(EmbeddedDocument):
    mean = FloatField(required=True)
    std = FloatField()  # calibrated uncertainty, same unit as mean


class StatusChange(EmbeddedDocument):
    status = StringField(required=True, choices=keys.CANDIDATE_STATUSES)
    at = DateTimeField(default=utcnow)
    reason = StringField()


class Candidate(Document):
    meta = {
        "collection": keys.COLL_CANDIDATES,
        "indexes": [
            # (campaign, fingerprint) is unique through the id derived from it (records.candidate_oid):
            # a unique index here would make every insert into the embedded store scan the collection
            {"fields": ["campaign", "fingerprint"], "name": "campaign_fingerprint"},
            ["campaign", "status"],
            ["campaign", "origin.round", "status"],
            "formula",
            "elements",
            "motif_labels",
            "origin.model_version",
            "fw_id",
            "-acquisition",
        ],
    }

    campaign = StringField(required=True)
    structure = DictField(required=True)  # pymatgen Structure.as_dict() (Molecule.as_dict() for molecules)
    formula = StringField(required=True)  # reduced formula
    elements = ListField(StringField(), required=True)  # sorted symbols
    nsites = IntField(required=True, min_value=1)
    fingerprint = StringField(required=True)  # canonical, see motif_screen.structures.fingerprint
    latent = ListField(FloatField())
    origin = EmbeddedDocumentField(Origin, required=True)
    predictions = MapField(EmbeddedDocumentField(Prediction))
    acquisition = FloatField()
    selection = StringField(choices=keys.SELECTIONS)  # set when chosen for the oracle
    validity = DictField()  # check name -> {"ok": bool, "detail": ...}
    motifs = DictField()  # per-structure motif summary
    motif_labels = ListField(StringField())  # e.g. "Ti:octahedral:O", for query --motif
    oracle = DictField()  # denormalised latest oracle values: {"source": ..., property: value}
    status = StringField(required=True, choices=keys.CANDIDATE_STATUSES, default=keys.STATUS_PROPOSED)
    status_reason = StringField()
    history = EmbeddedDocumentListField(StatusChange)
    fw_id = IntField()  # first Firework of its oracle workflow
    handoff = DictField()  # steps of its oracle workflow: {"steps": [...], "defines": {property: step}}
    task_ids = ListField(StringField())  # atomate task documents of its oracle workflow
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow)

    def to_structure(self):
        from pymatgen.core import Molecule, Structure

        cls = Structure if "lattice" in self.structure else Molecule
        return cls.from_dict(self.structure)


class OracleResult(Document):
    """A calculation of one candidate by one oracle. ``source`` keeps DFT and ML apart."""

    meta = {
        "collection": keys.COLL_ORACLE_RESULTS,
        "indexes": [
            {"fields": ["candidate", "source"], "unique": True},
            ["campaign", "source"],
            "task_id",
        ],
    }

    candidate = ReferenceField(Candidate, required=True)
    campaign = StringField(required=True)
    source = StringField(required=True, choices=keys.ORACLE_SOURCES)
    task_id = StringField()  # atomate task id of the step that defines the energies (vasp)
    task_ids = ListField(StringField())  # every task document of the candidate's workflow
    fw_id = IntField()
    final_structure = DictField()
    energy = FloatField()  # total, eV, as the oracle computed it (no correction)
    energy_per_atom = FloatField()
    formation_energy_per_atom = FloatField()  # against references of the same source, functional, input set
    energy_above_hull = FloatField()  # eV/atom, against the current hull of the chemical system
    band_gap = FloatField()
    functional = StringField()  # e.g. "GGA", "GGA+U", "R2SCAN", "CHGNet 0.3.0"
    input_set = StringField()  # fingerprint of the settings that must match for energies to be compared
    entry = DictField()  # pymatgen ComputedStructureEntry (as_dict), corrected where MP2020's rules apply
    awaiting_references = ListField(StringField())  # elements whose reference is not computed yet
    stability = DictField()  # {"decomposition": {formula: fraction}, "n_entries": n, "error": why not}
    hull_history = ListField(DictField())  # {"at", "energy_above_hull", "n_entries"}: each time it changed
    run_status = StringField(required=True, choices=("successful", "failed"))
    errors = ListField(StringField())
    model_version = IntField()  # model that proposed the candidate
    created = DateTimeField(default=utcnow)

    @property
    def is_dft(self) -> bool:
        return self.source in keys.DFT_SOURCES


class ReferenceEntry(Document):
    """An energy that formation energies and the hull are measured against.

    Elemental references (one element, its ground state) and competing phases alike, from an
    oracle run of the campaign (``origin="computed"``) or from the user (``origin="user"``,
    e.g. entries exported from the Materials Project). ``key`` makes re-adding idempotent.
    """

    meta = {
        "collection": keys.COLL_REFERENCES,
        "indexes": [{"fields": ["key"], "unique": True}, ["source", "functional", "input_set", "chemsys"], "elements"],
    }

    key = StringField(required=True)
    source = StringField(required=True, choices=keys.ORACLE_SOURCES)
    functional = StringField(required=True)
    input_set = StringField(required=True)
    formula = StringField(required=True)  # reduced formula
    elements = ListField(StringField(), required=True)
    chemsys = StringField(required=True)  # "Li-O"
    is_elemental = BooleanField(default=False)
    energy = FloatField()  # total, eV, uncorrected
    energy_per_atom = FloatField()
    entry = DictField()  # ComputedEntry / ComputedStructureEntry as_dict(), corrections applied where they apply
    origin = StringField(required=True, choices=("computed", "user"))
    status = StringField(required=True, choices=("submitted", "computed", "failed"), default="computed")
    fw_id = IntField()
    task_id = StringField()
    errors = ListField(StringField())
    created = DateTimeField(default=utcnow)


class GroundStatePrototype(Document):
    """A user's ground-state structure for an element, used instead of the shipped table when the
    campaign computes that element's reference."""

    meta = {"collection": keys.COLL_PROTOTYPES, "indexes": [{"fields": ["element"], "unique": True}]}

    element = StringField(required=True)
    structure = DictField(required=True)  # pymatgen Structure.as_dict()
    origin = StringField()  # the file it was read from
    created = DateTimeField(default=utcnow)


class ModelVersion(Document):
    meta = {
        "collection": keys.COLL_MODEL_VERSIONS,
        "indexes": [{"fields": ["name", "version"], "unique": True}, ["name", "promoted"]],
    }

    name = StringField(required=True)
    version = IntField(required=True, min_value=0)
    parent = IntField()
    checkpoint = FileField(collection_name=keys.GRIDFS_CHECKPOINTS)
    config = DictField()
    metrics = DictField()
    data_fingerprint = StringField()
    code_version = StringField()
    promoted = BooleanField(default=False)
    created = DateTimeField(default=utcnow)


class RoundChunk(Document):
    """What one chunk of a round's generation shard computed, waiting for the round's selection.

    ``payload`` is gzip-compressed JSON: one record per proposed structure (the structure, its
    latent and origin, fingerprint, validity, motifs, predictions), in generation order. The
    selection reads every chunk of the round, writes the candidates in their screened state and
    deletes the chunks; a shard re-run after a crash finds its finished chunks here and skips them.
    """

    meta = {
        "collection": keys.COLL_ROUND_CHUNKS,
        "indexes": [{"fields": ["campaign", "round", "chunk"], "unique": True}],
    }

    campaign = StringField(required=True)
    round = IntField(required=True, min_value=0)
    chunk = IntField(required=True, min_value=0)
    shard = IntField(required=True, min_value=0)
    size = IntField(required=True, min_value=0)
    payload = BinaryField(required=True)
    seconds = DictField()  # phase -> seconds spent on this chunk
    created = DateTimeField(default=utcnow)


class RoundRecord(Document):
    """The funnel of one campaign round, written once the round ends (upserted on re-run)."""

    meta = {"collection": keys.COLL_ROUNDS, "indexes": [{"fields": ["campaign", "round"], "unique": True}]}

    campaign = StringField(required=True)
    round = IntField(required=True, min_value=0)
    model_version = IntField()
    generated = IntField(default=0)
    valid = IntField(default=0)
    unique = IntField(default=0)
    novel = IntField(default=0)
    screened = IntField(default=0)
    submitted = IntField(default=0)
    computed = IntField(default=0)
    hits = IntField(default=0)
    hit_rate = FloatField()
    random_hit_rate = FloatField()  # expected hit rate of random picks from the same pool
    acceleration = FloatField()  # hit_rate / random_hit_rate
    identical_fingerprints = IntField(default=0)  # proposals already in the campaign (or earlier in the round)
    shards = IntField()  # generation shards the round ran in
    selected = BooleanField(default=False)  # the selection has written every candidate of the round
    phase_seconds = DictField()  # generation/validity/fingerprint/motifs/prediction/selection/storage -> seconds
    created = DateTimeField(default=utcnow)
