"""Model versions in MongoDB: a checkpoint's bytes in GridFS under ``ModelVersion`` documents.

Needs a mongoengine connection (``motif_screen.db.connect``). Versions of a name are numbered
1, 2, ...; at most one is promoted (the one screening uses).
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from motif_screen import __version__
from motif_screen.db import model_versions
from motif_screen.db.documents import ModelVersion
from motif_screen.errors import DatabaseError, ModelError
from motif_screen.model.checkpoint import json_safe, model_from_checkpoint, read_checkpoint
from motif_screen.training.fingerprint import migrate_fingerprint

__all__ = ["load_model_version", "migrate_stored_fingerprints", "register_model_version"]

log = logging.getLogger(__name__)
_CONNECTION_ERRORS = {"ConnectionFailure", "ServerSelectionTimeoutError", "MongoEngineConnectionError"}


def register_model_version(
    name: str,
    checkpoint_path,
    *,
    parent: int | None = None,
    metrics=None,
    data_fingerprint: str | None = None,
    config=None,
    promoted: bool = False,
) -> ModelVersion:
    """Store the checkpoint's bytes in GridFS as the next integer version of ``name``.

    The checkpoint must load (it is read back first). Promoting a version un-promotes the others
    of the same name, so "the latest promoted" is always one model.
    """
    path = Path(checkpoint_path).expanduser()
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    data = path.read_bytes()
    read_checkpoint(data, str(path))  # refuse to register something that could not be loaded back
    try:
        doc = model_versions.add(
            name,
            data,
            parent=parent,
            config=json_safe(config or {}),
            metrics=json_safe(metrics or {}),
            data_fingerprint=data_fingerprint,
            code_version=__version__,
            promoted=promoted,
        )
    except Exception as exc:
        if type(exc).__name__ in _CONNECTION_ERRORS:
            raise DatabaseError(
                f"cannot register model {name}: no database connection ({type(exc).__name__})"
            ) from None
        raise
    log.info("registered model %s v%d (%s)", name, doc.version, "promoted" if promoted else "not promoted")
    return doc


def load_model_version(name: str, version: int | None = None) -> nn.Module:
    """The model ``name`` at ``version``; ``None`` means the latest promoted (else the latest) version.
    The model's ``model_name`` and ``model_version`` (int) say which one it is."""
    doc = model_versions.find(name, version)
    label = f"model {name} v{doc.version}"
    model = model_from_checkpoint(read_checkpoint(model_versions.checkpoint_bytes(doc), label), label)
    model.model_name, model.model_version = name, int(doc.version)
    return model


def migrate_stored_fingerprints() -> int:
    """Tag every stored ``ModelVersion.data_fingerprint`` written before the v2 scheme with its
    scheme (see :func:`motif_screen.training.fingerprint.migrate_fingerprint`); returns how many
    documents changed. Idempotent: a second run changes nothing."""
    return model_versions.rewrite_fingerprints(migrate_fingerprint)
