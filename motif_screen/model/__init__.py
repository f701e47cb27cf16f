"""motif_screen.model: the e3nn encoder, property heads, checkpoints and model versions.

Public surface (others code against these names):

- :class:`Encoder`, :func:`build_encoder` (presets ``"S"`` / ``"M"`` in :mod:`.presets`)
- :class:`PropertyModel`, :func:`build_property_model` — ``predict(structures)`` / ``encode(structures)``
- :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`register_model_version`,
  :func:`load_model_version`, :func:`register_kind`
- blocks: :class:`Interaction`, :class:`RadialEmbedding`, :class:`MeanPool`, :class:`EnsembleHeads`

Importing this package imports torch and e3nn; the rest of motif_screen imports it lazily.
"""

from motif_screen.model.blocks import Interaction, MeanPool, RadialEmbedding, gate_for, hidden_irreps
from motif_screen.model.checkpoint import (
    load_checkpoint,
    load_model_version,
    read_checkpoint,
    register_kind,
    register_model_version,
    save_checkpoint,
)
from motif_screen.model.encoder import Encoder, build_encoder
from motif_screen.model.heads import EnsembleHeads, TargetScaler, ensemble_moments
from motif_screen.model.presets import DEFAULT_VOCABULARY, PRESETS, encoder_config
from motif_screen.model.property_model import PropertyModel, build_property_model

__all__ = [
    "DEFAULT_VOCABULARY",
    "PRESETS",
    "Encoder",
    "EnsembleHeads",
    "Interaction",
    "MeanPool",
    "PropertyModel",
    "RadialEmbedding",
    "TargetScaler",
    "build_encoder",
    "build_property_model",
    "encoder_config",
    "ensemble_moments",
    "gate_for",
    "hidden_irreps",
    "load_checkpoint",
    "load_model_version",
    "read_checkpoint",
    "register_kind",
    "register_model_version",
    "save_checkpoint",
]
