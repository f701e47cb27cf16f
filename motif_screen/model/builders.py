"""The model kinds a checkpoint can hold, each rebuilt from the configuration it records.

Every architecture that can be saved is listed here once. :mod:`motif_screen.model.checkpoint`
reads this table to name the kind of a model it writes and to rebuild the model a checkpoint
holds. A listed class declares its kind in ``KIND``, its architecture in a ``model_config``
property (plain data) and rebuilds itself with the ``from_config(config)`` classmethod.
"""

from __future__ import annotations

from torch import nn

from motif_screen.errors import ModelError
from motif_screen.model.autoencoder import StructureAutoencoder
from motif_screen.model.completion import CompletionModel
from motif_screen.model.property_model import PropertyModel

__all__ = ["MODEL_KINDS", "CheckpointModel", "build_from_config", "kind_of"]

# a model of one of the kinds below (each has KIND, model_config and from_config)
CheckpointModel = PropertyModel | StructureAutoencoder | CompletionModel

MODEL_KINDS: dict[str, type[CheckpointModel]] = {
    cls.KIND: cls for cls in (PropertyModel, StructureAutoencoder, CompletionModel)
}


def kind_of(model: nn.Module) -> str:
    """The checkpoint kind of ``model``; ModelError for a class this table does not list."""
    for kind, cls in MODEL_KINDS.items():
        if type(model) is cls:
            return kind
    raise ModelError(
        f"cannot checkpoint a {type(model).__name__}: it is not one of the model kinds {', '.join(sorted(MODEL_KINDS))}"
    )


def build_from_config(kind: str, config: dict) -> CheckpointModel:
    """A fresh (untrained) model of ``kind`` with the architecture ``config`` records."""
    if kind not in MODEL_KINDS:
        raise ModelError(f"model kind {kind!r} is unknown to this code; it builds {', '.join(sorted(MODEL_KINDS))}")
    return MODEL_KINDS[kind].from_config(config)
