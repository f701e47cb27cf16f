"""Training configurations, one class per training task, read from YAML files or dicts.

Every config is a pydantic model with the same reading rules (:meth:`TrainingSettings.from_dict`):
unknown keys are refused by name, a ``null`` value means "the default", values are type-checked,
and every problem is one :class:`~motif_screen.errors.ConfigError` line. ``to_dict()`` is what a
checkpoint records.

- :class:`TrainConfig`: ``task: property``, an encoder + ensemble heads (:mod:`.loop`);
- :class:`AutoencoderTrainConfig`: ``task: autoencoder``, the structure autoencoder (:mod:`.autoencoder`);
- :class:`HeadsTrainConfig`: ``task: heads``, the property heads of a trained autoencoder on its
  frozen encoder's latents (:mod:`.latent_heads`);
- :class:`CompletionConfig`: the atom-completion model (:mod:`.completion`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from motif_screen.errors import ConfigError

__all__ = [
    "AutoencoderTrainConfig",
    "CompletionConfig",
    "HeadsTrainConfig",
    "TrainConfig",
    "TrainingSettings",
    "load_yaml",
]


class TrainingSettings(BaseModel):
    """What the training configs share: how they are read, checked and recorded."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    WHAT: ClassVar[str] = "training"  # names the config in error messages

    @classmethod
    def prepare(cls, values: dict) -> dict:
        """Rewrite accepted aliases into fields (a hook for subclasses)."""
        return values

    @classmethod
    def from_dict(cls, values: dict | None):
        values = {k: v for k, v in dict(values or {}).items() if v is not None}
        values.pop("task", None)
        values = cls.prepare(values)
        known = set(cls.model_fields)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.WHAT} setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg'].removeprefix('Value error, ')}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid {cls.WHAT} setting(s): {problems}") from None

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


class TrainConfig(TrainingSettings):
    """Everything a property-model training run depends on (stored in the checkpoint)."""

    targets: list[str] = Field(default_factory=list)  # names; default: the keys of the targets dict
    preset: str = "S"  # encoder size, see motif_screen.model.presets
    encoder: dict = Field(default_factory=dict)  # overrides of the preset (cutoff, channels, ...)
    ensemble_size: int = Field(default=5, ge=1)
    head_hidden: int = Field(default=64, ge=1)
    epochs: int = Field(default=100, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-6, ge=0)
    grad_clip: float = Field(default=10.0, gt=0)
    patience: int = Field(default=15, ge=1)  # early stopping: epochs without validation improvement
    min_delta: float = Field(default=1e-4, ge=0)  # improvement smaller than this (normalised MAE) does not count
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    bootstrap: bool = True  # each ensemble head sees its own Poisson(1) weighting of the data
    nll_weight: float = Field(default=1.0, ge=0)  # weight of the variance (Gaussian NLL) term
    seed: int = 0
    max_minutes: float | None = Field(default=None, gt=0)  # wall-clock budget; stops cleanly when spent
    max_atoms: int = Field(default=5000, ge=1)
    num_threads: int | None = Field(default=None, ge=1)
    progress: bool = True
    out_dir: str | None = None  # best.pt / last_good.pt / model.pt are written here when set
    data: dict = Field(default_factory=dict)  # data source (see motif_screen.training.datasets.load_data)

    @classmethod
    def prepare(cls, values: dict) -> dict:
        early = values.pop("early_stopping", None)
        if isinstance(early, dict):
            values.setdefault("patience", early.get("patience", cls.model_fields["patience"].default))
            values.setdefault("min_delta", early.get("min_delta", cls.model_fields["min_delta"].default))
        if isinstance(values.get("targets"), str):
            values["targets"] = [values["targets"]]
        return values


class AutoencoderTrainConfig(TrainingSettings):
    """An ``autoencoder`` recipe (see ``motif_screen/pretrained/perov5_autoencoder.yaml``)."""

    WHAT: ClassVar[str] = "autoencoder recipe"

    data: str  # a CSV with a `cif` column (path relative to the working directory), or "qm9"
    name: str | None = None  # the model's name; default: the output file's stem
    properties: dict[str, str] = Field(default_factory=dict)  # model property -> CSV column
    limit: int | None = Field(default=None, ge=2)  # use only the first N structures (after shuffling)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    epochs: int = Field(default=100, ge=1)
    max_minutes: float = Field(default=30.0, gt=0)  # stop early (and say so in the metrics) when time runs out
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    seed: int = 0
    threads: int | None = Field(default=None, ge=1)
    model: dict = Field(default_factory=dict)  # AutoencoderConfig fields (encoder_preset, latent_dim, decoder, ...)
    output: str | None = None  # the checkpoint to write
    out_dir: str | None = None  # set by `motif-screen train --out`: the checkpoint goes to <out_dir>/<name>.pt
    # a trained autoencoder of the same elements to start from: its weights are copied wherever the
    # recipe's network has the same tensor (continued training, or a decoder head added to it)
    init_from: str | None = None
    qm9: dict = Field(default_factory=lambda: {"n": 5000, "max_atoms": 29})
    log_every: int = Field(default=1, ge=0)  # print the loss terms every N epochs (0: never)
    head_epochs: int = Field(default=0, ge=0)  # then refit the latent -> (size, composition, lattice, property) MLPs
    head_lr: float = Field(default=3e-3, gt=0)
    prior_components: int | str = "auto"  # Gaussians in the latent prior: a number, or "auto" (held-out likelihood)


class HeadsTrainConfig(TrainingSettings):
    """A ``heads`` recipe: new property heads on the frozen latents of a trained autoencoder.

    The encoder, decoder and latent prior of ``base`` are kept bit for bit (generation stays the
    same); only the heads, their target normalisation and σ calibration are new. ``targets`` maps
    each head's name to its data: a list of :func:`~motif_screen.training.datasets.load_data` specs,
    each with ``column`` (the label to read; default: the head's name) and ``split`` (``auto``: its
    rows take part in the chemistry split; ``train``: training only, e.g. cells unlike the ones
    screened, which must not calibrate σ) and ``relative_to_lowest`` (``true``: the label is the value
    minus the lowest value of that data, e.g. the total energies of polymorphs of one element become
    formation energies against the set's own ground state).
    """

    WHAT: ClassVar[str] = "heads recipe"

    base: str  # the autoencoder checkpoint whose encoder, decoder and prior are kept
    name: str | None = None  # the model's name; default: the base model's
    targets: dict[str, list[dict]]  # head name -> data specs (see above)
    test_elements: list[str] | int = 0  # rows with any of these elements (or N cations drawn by seed) are test only
    test_targets: list[str] | None = None  # heads whose test rows are held out (default: every head)
    calibration_fraction: float = Field(0.15, ge=0.0, lt=1.0)  # compositions held out to scale σ
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)  # compositions of the rest held out for early stopping
    ensemble_size: int = Field(5, ge=1)
    epochs: int = Field(600, ge=1)
    patience: int = Field(60, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    bootstrap: bool = True  # each ensemble member sees its own Poisson(1) weighting of the rows
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    allow_mixed_sources: bool = False  # labels of different oracle sources under one head
    output: str | None = None  # the checkpoint to write (paths are read from the working directory)


class CompletionConfig(TrainingSettings):
    """Everything that decides an atom-completion training run (saved next to its metrics)."""

    WHAT: ClassVar[str] = "completion training"

    preset: str = "S"
    encoder_overrides: dict = Field(default_factory=dict)
    hidden_scalars: int = Field(default=32, ge=1)
    hidden_vectors: int = Field(default=8, ge=1)
    elements: tuple[int, ...] | None = None  # default: the elements of the training molecules
    epochs: int = Field(default=200, ge=1)
    batch_size: int = Field(default=32, ge=1)  # on CPU ~2x the structures/s of batch 16 (measured here)
    lr: float = Field(default=3e-3, gt=0)
    # cosine decay to this over the epochs or max_minutes, whichever ends first
    lr_min: float = Field(default=1e-4, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    position_weight: float = Field(default=1.0, ge=0)  # loss = cross-entropy + position_weight * |Δr|² (Å²)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)  # at least one structure is held out
    patience: int = Field(default=40, ge=1)  # epochs without a better validation loss before stopping
    max_minutes: float | None = Field(default=None, gt=0)  # wall-clock budget; stop (keeping the best model) when spent
    seed: int = 0
    num_threads: int | None = Field(default=None, ge=1)
    progress: bool = True


def load_yaml(path) -> dict[str, Any]:
    """A YAML config file as a dict, with a clear error for a missing or malformed file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return values
