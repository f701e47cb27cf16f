"""Checkpoints: a model as a file (or bytes) and back.

A checkpoint is a plain dict loadable with ``torch.load(weights_only=True)`` (no pickled code):
format tag and version, model kind, code version, the architecture config, the training config,
the element vocabulary, per-target normalisation, metrics, the data fingerprint and the state
dict. Like NequIP, a code-version mismatch warns; an unknown format, an architecture that does not
fit the weights, or weights that are not finite refuse with a clear :class:`ModelError`. Older
format versions are brought up to date by :mod:`motif_screen.model.migrations` on reading.
Storing checkpoints as model versions in MongoDB is :mod:`motif_screen.training.registry`.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import cast

import torch
from torch import nn

from motif_screen import __version__
from motif_screen.errors import ModelError
from motif_screen.model.autoencoder import StructureAutoencoder
from motif_screen.model.builders import MODEL_KINDS, CheckpointModel, build_from_config, kind_of
from motif_screen.model.migrations import FORMAT_VERSION, migrate
from motif_screen.provenance import code_commit

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "checkpoint_dict",
    "json_safe",
    "load_autoencoder",
    "load_checkpoint",
    "model_from_checkpoint",
    "read_checkpoint",
    "save_autoencoder",
    "save_checkpoint",
]

FORMAT = "motif_screen.checkpoint"


def json_safe(value):
    """JSON round trip: only primitives reach a checkpoint or a database document."""
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def _non_finite(state_dict: dict) -> list[str]:
    """Names of the floating-point tensors of a state dict that hold NaN or infinite values."""
    return [
        name
        for name, value in state_dict.items()
        if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


def _refuse_non_finite(state_dict: dict, label: str) -> None:
    bad = _non_finite(state_dict)
    if bad:
        more = f" and {len(bad) - 1} other tensor(s)" if len(bad) > 1 else ""
        raise ModelError(
            f"{label} holds NaN or infinite weights ({bad[0]}{more}); it cannot be used: "
            "retrain the model or use an earlier checkpoint"
        )


def checkpoint_dict(model: nn.Module, *, config=None, metrics=None, data_fingerprint=None) -> dict:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    _refuse_non_finite(state, f"the {type(model).__name__} to be saved")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind_of(model),
        "code_version": __version__,
        "code_commit": code_commit(),  # the git commit of the source that trained it, None outside a checkout
        "torch_version": str(torch.__version__),
        "model_config": json_safe(model.model_config),
        "config": json_safe(config or {}),
        "metrics": json_safe(metrics or {}),
        "data_fingerprint": data_fingerprint,
        "state_dict": state,
    }
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "vocabulary"):
        payload["vocabulary"] = [int(z) for z in encoder.vocabulary]
    scaler = getattr(model, "scaler", None)
    targets = getattr(model, "targets", None)
    if scaler is not None and targets is not None:
        payload["normalisation"] = {
            t: {
                "shift": float(scaler.shift[i]),
                "scale": float(scaler.scale[i]),
                "std_factor": float(scaler.std_factor[i]),
            }
            for i, t in enumerate(targets)
        }
    return payload


def save_checkpoint(path, model: nn.Module, *, config=None, metrics=None, data_fingerprint=None) -> Path:
    """Write ``model`` to ``path`` atomically (temporary file + rename); returns the path.

    A model with NaN or infinite weights is refused (ModelError) and nothing is written."""
    payload = checkpoint_dict(model, config=config, metrics=metrics, data_fingerprint=data_fingerprint)
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(source, label: str | None = None) -> dict:
    """The checkpoint dict of a path or bytes, validated and migrated to :data:`FORMAT_VERSION`;
    raises :class:`ModelError` when it is unusable."""
    label = label or str(source)
    handle: io.BytesIO | Path
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
    payload = migrate(payload, label)
    if not isinstance(payload.get("state_dict"), dict):
        raise ModelError(f"checkpoint {label} holds no state dict")
    _refuse_non_finite(payload["state_dict"], f"checkpoint {label}")
    if payload.get("code_version") != __version__:
        warnings.warn(
            f"checkpoint {label} was written by motif_screen {payload.get('code_version')}, this is {__version__}",
            stacklevel=3,
        )
    return payload


def model_from_checkpoint(payload: dict, label: str = "checkpoint") -> CheckpointModel:
    """The model a :func:`read_checkpoint` payload describes, in eval mode, with
    ``checkpoint_info`` (config, metrics, data fingerprint, code version)."""
    kind = payload.get("kind")
    if kind not in MODEL_KINDS:
        raise ModelError(f"{label} holds a model of kind {kind!r}, which this code cannot build")
    try:
        model = build_from_config(kind, payload["model_config"])
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelError(f"{label} does not match this code's {kind} architecture: {first}") from None
    recorded = ("config", "metrics", "data_fingerprint", "code_version", "code_commit")
    model.checkpoint_info = {k: payload.get(k) for k in recorded}
    model.eval()
    return model


def load_checkpoint(path, kind: str | None = None) -> CheckpointModel:
    """The model stored at ``path`` (eval mode); ``model.checkpoint_info`` holds config/metrics/fingerprint
    and ``model.model_name`` the name it was saved under (else the file's stem). With ``kind``, a
    checkpoint of another kind is refused."""
    payload = read_checkpoint(path, str(path))
    if kind is not None and payload.get("kind") != kind:
        raise ModelError(f"checkpoint {path} holds a model of kind {payload.get('kind')!r}, not {kind!r}")
    model = model_from_checkpoint(payload, str(path))
    model.model_name = (model.checkpoint_info.get("config") or {}).get("name") or Path(path).stem
    return model


def save_autoencoder(
    model: StructureAutoencoder,
    path,
    config: dict | None = None,
    metrics: dict | None = None,
    data_fingerprint: str | None = None,
) -> Path:
    """:func:`save_checkpoint` of an autoencoder, recording its ``model_name`` in the config."""
    return save_checkpoint(
        path,
        model,
        config={"name": model.model_name, **(config or {})},
        metrics=metrics,
        data_fingerprint=data_fingerprint,
    )


def load_autoencoder(path) -> StructureAutoencoder:
    """The structure autoencoder stored at ``path``; a missing, corrupt or foreign file raises ModelError."""
    # load_checkpoint refuses a checkpoint of any other kind, so this is an autoencoder
    return cast(StructureAutoencoder, load_checkpoint(path, kind=StructureAutoencoder.KIND))
