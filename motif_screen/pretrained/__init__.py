"""Checkpoints shipped inside the package, and their registration as ModelVersions.

Each checkpoint here was trained by ``motif-screen train`` with the recipe YAML beside it; the
recipe names its data (the public perov-5 and carbon-24 splits, or QM9 from ``qm9pack``) and seed, so anyone
can re-create it.
"""

from __future__ import annotations

from pathlib import Path

from motif_screen.db import model_versions
from motif_screen.errors import ModelError
from motif_screen.model.checkpoint import read_checkpoint
from motif_screen.training.registry import register_model_version

HERE = Path(__file__).parent
DEFAULT_MODEL = "perov5"
SHIPPED = {"perov5": "perov5_autoencoder.pt", "carbon24": "carbon24_autoencoder.pt", "qm9": "qm9_autoencoder.pt"}


def shipped_checkpoint(name: str = DEFAULT_MODEL) -> Path:
    if name not in SHIPPED:
        raise ModelError(f"no shipped model named {name!r}; shipped: {', '.join(SHIPPED)}")
    path = HERE / SHIPPED[name]
    if not path.is_file():
        raise ModelError(
            f"the shipped checkpoint {path} is missing: reinstall motif_screen or retrain it with "
            f"`motif-screen train --config {path.with_suffix('.yaml')}`"
        )
    return path


def ensure_registered(name: str = DEFAULT_MODEL, checkpoint: Path | None = None):
    """Register the shipped (or given) checkpoint as version 1 of ``name`` unless ``name`` exists."""
    existing = model_versions.first(name)
    if existing is not None:
        return existing, False
    path = Path(checkpoint) if checkpoint else shipped_checkpoint(name)
    payload = read_checkpoint(path.read_bytes() if path.is_file() else b"", str(path))
    doc = register_model_version(
        name,
        path,
        metrics=payload.get("metrics") or {},
        data_fingerprint=payload.get("data_fingerprint"),
        config={"source": "shipped" if checkpoint is None else str(path)},
        promoted=True,
    )
    return doc, True
