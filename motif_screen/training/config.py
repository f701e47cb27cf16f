"""Training configuration: one dataclass, read from YAML/dicts, unknown keys refused."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from motif_screen.errors import ConfigError


@dataclass
class TrainConfig:
    """Everything a property-model training run depends on (stored in the checkpoint)."""

    targets: list[str] = field(default_factory=list)  # names; default: the keys of the targets dict
    preset: str = "S"  # encoder size, see motif_screen.model.presets
    encoder: dict = field(default_factory=dict)  # overrides of the preset (cutoff, channels, ...)
    ensemble_size: int = 5
    head_hidden: int = 64
    epochs: int = 100
    batch_size: int = 32
    lr: float = 3e-3
    fine_tune_lr: float | None = None  # default lr / 5
    weight_decay: float = 1e-6
    grad_clip: float = 10.0
    patience: int = 15  # early stopping: epochs without validation improvement
    min_delta: float = 1e-4  # improvement smaller than this (normalised MAE) does not count
    val_fraction: float = 0.1
    bootstrap: bool = True  # each ensemble head sees its own Poisson(1) weighting of the data
    nll_weight: float = 1.0  # weight of the variance (Gaussian NLL) term
    seed: int = 0
    max_minutes: float | None = None  # wall-clock budget; stops cleanly when spent
    max_atoms: int = 5000
    num_threads: int | None = None
    progress: bool = True
    out_dir: str | None = None  # best.pt / last_good.pt are written here when set
    data: dict = field(default_factory=dict)  # data source (see motif_screen.training.datasets.load_data)

    @classmethod
    def from_dict(cls, values: dict | None) -> "TrainConfig":
        values = dict(values or {})
        values.pop("task", None)
        early = values.pop("early_stopping", None)
        if isinstance(early, dict):
            values.setdefault("patience", early.get("patience", cls.patience))
            values.setdefault("min_delta", early.get("min_delta", cls.min_delta))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if isinstance(values.get("targets"), str):
            values["targets"] = [values["targets"]]
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.ensemble_size < 1:
            raise ConfigError("epochs, batch_size and ensemble_size must be at least 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_yaml(path) -> dict:
    """A YAML config file as a dict, with a clear error for a missing or malformed file."""
    import yaml

    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return values
