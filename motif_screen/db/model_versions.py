"""The queries on model versions: checkpoints in GridFS under ``ModelVersion`` documents.

Versions of a name are numbered 1, 2, ...; at most one is promoted (the one screening uses).
The :class:`~motif_screen.db.repository.Repository` and the training registry both go through here.
"""

from __future__ import annotations

from collections.abc import Callable

from mongoengine.errors import NotUniqueError

from motif_screen.db.documents import ModelVersion
from motif_screen.errors import DatabaseError, ModelError


def find(name: str, version: int | None = None) -> ModelVersion:
    """``version`` of ``name``; None: the latest promoted version, else the latest."""
    query = ModelVersion.objects(name=name)
    if version is not None:
        doc = query.filter(version=int(version)).first()
        if doc is None:
            raise ModelError(f"model {name} has no version {version} in the database")
        return doc
    doc = query.filter(promoted=True).order_by("-version").first() or query.order_by("-version").first()
    if doc is None:
        raise ModelError(f"no model named {name} is registered: `motif-screen run` registers the shipped one")
    return doc


def first(name: str) -> ModelVersion | None:
    return ModelVersion.objects(name=name).order_by("version").first()


def add(name: str, checkpoint: bytes, *, promoted: bool = False, **fields) -> ModelVersion:
    """Store ``checkpoint`` in GridFS as the next version of ``name``; promoting one un-promotes the rest."""
    latest = ModelVersion.objects(name=name).order_by("-version").only("version").first()
    version = (latest.version + 1) if latest else 1
    doc = ModelVersion(name=name, version=version, promoted=bool(promoted), **fields)
    try:
        doc.checkpoint.put(checkpoint, filename=f"{name}-v{version}.pt", content_type="application/x-pytorch")
        doc.save()
    except NotUniqueError:
        raise DatabaseError(f"model version {name} v{version} was registered concurrently; retry") from None
    if promoted:
        ModelVersion.objects(name=name, version__ne=version, promoted=True).update(set__promoted=False)
    return doc


def checkpoint_bytes(doc: ModelVersion) -> bytes:
    data = doc.checkpoint.read() if doc.checkpoint else None
    if not data:
        raise ModelError(f"model {doc.name} v{doc.version} has no checkpoint bytes in GridFS")
    return data


def of_round(name: str, campaign: str, round_index: int) -> ModelVersion | None:
    """The version a campaign round registered when it retrained (None: it has not)."""
    return ModelVersion.objects(name=name, config__campaign=campaign, config__round=int(round_index)).first()


def rewrite_fingerprints(migrate: Callable[[str], str | None]) -> int:
    """Apply ``migrate`` to every stored data fingerprint; returns how many changed (idempotent)."""
    changed = 0
    for doc in ModelVersion.objects(data_fingerprint__ne=None).only("data_fingerprint"):
        new = migrate(doc.data_fingerprint)
        if new != doc.data_fingerprint:
            ModelVersion.objects(pk=doc.pk).update_one(set__data_fingerprint=new)
            changed += 1
    return changed
