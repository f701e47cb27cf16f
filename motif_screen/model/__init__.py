"""motif_screen.model: the e3nn networks (encoder, heads, decoder, autoencoder) and their checkpoints.

Public surface (others code against these names):

- :class:`Encoder`, :func:`build_encoder` (presets ``"S"`` / ``"M"`` in :mod:`.presets`)
- :class:`PropertyModel`, :func:`build_property_model` — ``predict(structures)`` / ``encode(structures)``
- :class:`~.autoencoder.StructureAutoencoder`, :func:`~.autoencoder.build_autoencoder`
- :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`read_checkpoint`, :func:`save_autoencoder`,
  :func:`load_autoencoder` (files and bytes; model versions in MongoDB are
  :mod:`motif_screen.training.registry`); the model kinds a checkpoint can hold: :data:`MODEL_KINDS`
- blocks: :class:`Interaction`, :class:`RadialEmbedding`, :class:`MeanPool`, :class:`EnsembleHeads`

Importing this package imports torch and e3nn; CLI verbs import it only when they run.
"""

from motif_screen.model.autoencoder import AutoencoderConfig, StructureAutoencoder, build_autoencoder
from motif_screen.model.blocks import Interaction, MeanPool, RadialEmbedding, gate_for, hidden_irreps
from motif_screen.model.builders import MODEL_KINDS
from motif_screen.model.checkpoint import (
    load_autoencoder,
    load_checkpoint,
    read_checkpoint,
    save_autoencoder,
    save_checkpoint,
)
from motif_screen.model.encoder import Encoder, build_encoder
from motif_screen.model.heads import EnsembleHeads, TargetScaler, ensemble_moments
from motif_screen.model.presets import DEFAULT_VOCABULARY, PRESETS, encoder_config
from motif_screen.model.property_model import PropertyModel, build_property_model

__all__ = [
    "DEFAULT_VOCABULARY",
    "MODEL_KINDS",
    "PRESETS",
    "AutoencoderConfig",
    "Encoder",
    "EnsembleHeads",
    "Interaction",
    "MeanPool",
    "PropertyModel",
    "RadialEmbedding",
    "StructureAutoencoder",
    "TargetScaler",
    "build_autoencoder",
    "build_encoder",
    "build_property_model",
    "encoder_config",
    "ensemble_moments",
    "gate_for",
    "hidden_irreps",
    "load_autoencoder",
    "load_checkpoint",
    "read_checkpoint",
    "save_autoencoder",
    "save_checkpoint",
]
