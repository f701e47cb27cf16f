"""Checkpoints on disk and model versions in MongoDB (GridFS).

A checkpoint is a plain dict loadable with ``torch.load(weights_only=True)`` (no pickled code):
format tag, model kind, code version, the architecture config, the training config, the element
vocabulary, per-target normalisation, metrics, the data fingerprint and the state dict. Like
NequIP, a code-version mismatch warns, an architecture/format mismatch refuses with a clear error.

Other model kinds (e.g. the autoencoder) plug in with :func:`register_kind`: any ``nn.Module``
with a ``model_config`` property, a ``from_config(config)`` classmethod and a ``KIND`` attribute.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from pathlib import Path

import torch

from motif_screen.errors import DatabaseError, ModelError

log = logging.getLogger(__name__)

FORMAT = "motif_screen.checkpoint"
FORMAT_VERSION = 1
_KINDS: dict[str, type] = {}


def register_kind(kind: str, cls: type) -> None:
    """Let :func:`load_checkpoint` rebuild models of ``kind`` with ``cls.from_config``."""
    _KINDS[kind] = cls


def _kind_of(model) -> str:
    from motif_screen.model.property_model import PropertyModel

    if isinstance(model, PropertyModel):
        return "property"
    kind = getattr(model, "KIND", None)
    if kind is None:
        raise ModelError(f"cannot checkpoint a {type(model).__name__}: it declares no KIND")
    _KINDS.setdefault(kind, type(model))
    return kind


def _plain(value):
    """JSON round trip: only primitives reach the file, so weights_only loading always works."""
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def checkpoint_dict(model, *, config=None, metrics=None, data_fingerprint=None) -> dict:
    from motif_screen import __version__

    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": _kind_of(model),
        "code_version": __version__,
        "torch_version": str(torch.__version__),
        "model_config": _plain(model.model_config),
        "config": _plain(config or {}),
        "metrics": _plain(metrics or {}),
        "data_fingerprint": data_fingerprint,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "vocabulary"):
        payload["vocabulary"] = [int(z) for z in encoder.vocabulary]
    scaler = getattr(model, "scaler", None)
    if scaler is not None and hasattr(model, "targets"):
        payload["normalisation"] = {
            t: {"shift": float(scaler.shift[i]), "scale": float(scaler.scale[i]), "std_factor": float(scaler.std_factor[i])}
            for i, t in enumerate(model.targets)
        }
    return payload


def save_checkpoint(path, model, *, config=None, metrics=None, data_fingerprint=None) -> Path:
    """Write ``model`` to ``path`` atomically (temporary file + rename); returns the path."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(checkpoint_dict(model, config=config, metrics=metrics, data_fingerprint=data_fingerprint), tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(source, label: str | None = None) -> dict:
    """The checkpoint dict of a path or bytes, validated; raises :class:`ModelError` when unusable."""
    label = label or str(source)
    if isinstance(source, (bytes, bytearray)):
        handle = io.BytesIO(source)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ModelError(f"checkpoint {path} does not exist")
        handle = path
    try:
        payload = torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, BadZipFile, RuntimeError, struct.error... for junk
        raise ModelError(f"checkpoint {label} is corrupt or not a torch file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"checkpoint {label} is not a motif_screen checkpoint (no '{FORMAT}' format tag)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"checkpoint {label} has format version {payload.get('format_version')}, this code reads {FORMAT_VERSION}"
        )
    from motif_screen import __version__

    if payload.get("code_version") != __version__:
        warnings.warn(
            f"checkpoint {label} was written by motif_screen {payload.get('code_version')}, this is {__version__}",
            stacklevel=3,
        )
    return payload


def model_from_checkpoint(payload: dict, label: str = "checkpoint"):
    from motif_screen.model.property_model import PropertyModel

    kinds = {"property": PropertyModel, **_KINDS}
    kind = payload.get("kind")
    if kind not in kinds:
        if kind == "autoencoder":  # registered when its module is imported
            try:
                import motif_screen.model.autoencoder  # noqa: F401
            except ImportError:
                pass
            kinds.update(_KINDS)
        if kind not in kinds:
            raise ModelError(f"{label} holds a model of kind {kind!r}, which this code cannot build")
    try:
        model = kinds[kind].from_config(payload["model_config"])
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelError(f"{label} does not match this code's {kind} architecture: {first}") from None
    model.checkpoint_info = {k: payload.get(k) for k in ("config", "metrics", "data_fingerprint", "code_version")}
    model.eval()
    return model


def load_checkpoint(path):
    """The model stored at ``path`` (eval mode); ``model.checkpoint_info`` holds config/metrics/fingerprint."""
    return model_from_checkpoint(read_checkpoint(path), str(path))


# --- model versions in MongoDB --------------------------------------------------------------

def register_model_version(name: str, checkpoint_path, *, parent: int | None = None, metrics=None,
                           data_fingerprint: str | None = None, config=None, promoted: bool = False):
    """Store the checkpoint's bytes in GridFS as the next integer version of ``name``.

    Needs a mongoengine connection (``motif_screen.db.connect``). Promoting a version un-promotes
    the others of the same name, so "the latest promoted" is always one model.
    """
    from mongoengine.errors import NotUniqueError

    from motif_screen import __version__
    from motif_screen.db.documents import ModelVersion

    path = Path(checkpoint_path).expanduser()
    data = path.read_bytes() if path.is_file() else None
    if data is None:
        raise ModelError(f"checkpoint {path} does not exist")
    read_checkpoint(data, str(path))  # refuse to register something we could not load back
    try:
        latest = ModelVersion.objects(name=name).order_by("-version").only("version").first()
        version = (latest.version + 1) if latest else 1
        doc = ModelVersion(name=name, version=version, parent=parent, config=_plain(config or {}),
                           metrics=_plain(metrics or {}), data_fingerprint=data_fingerprint,
                           code_version=__version__, promoted=bool(promoted))
        doc.checkpoint.put(data, filename=f"{name}-v{version}.pt", content_type="application/x-pytorch")
        doc.save()
        if promoted:
            ModelVersion.objects(name=name, version__ne=version, promoted=True).update(set__promoted=False)
    except NotUniqueError:
        raise DatabaseError(f"model version {name} v{version} was registered concurrently; retry") from None
    except ModelError:
        raise
    except Exception as exc:
        if type(exc).__name__ in {"ConnectionFailure", "ServerSelectionTimeoutError", "MongoEngineConnectionError"}:
            raise DatabaseError(f"cannot register model {name}: no database connection ({type(exc).__name__})") from None
        raise
    log.info("registered model %s v%d (%s)", name, version, "promoted" if promoted else "not promoted")
    return doc


def load_model_version(name: str, version: int | None = None):
    """The model ``name`` at ``version``; ``None`` means the latest promoted (else the latest) version."""
    from motif_screen.db.documents import ModelVersion

    query = ModelVersion.objects(name=name)
    if version is not None:
        doc = query.filter(version=int(version)).first()
        if doc is None:
            raise ModelError(f"model {name} has no version {version}")
    else:
        doc = query.filter(promoted=True).order_by("-version").first() or query.order_by("-version").first()
        if doc is None:
            raise ModelError(f"no model named {name} is registered in the database")
    data = doc.checkpoint.read() if doc.checkpoint else None
    if not data:
        raise ModelError(f"model {name} v{doc.version} has no checkpoint bytes in GridFS")
    model = model_from_checkpoint(read_checkpoint(data, f"model {name} v{doc.version}"), f"model {name} v{doc.version}")
    model.model_version = {"name": name, "version": doc.version}
    return model
