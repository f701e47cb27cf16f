"""motif_screen.training: datasets, the property-model training loop, metrics, configs.

Public surface: :func:`train_property_model`, :func:`fine_tune`, :func:`evaluate`,
:class:`TrainConfig`, :func:`load_data` (csv / files / qm9 / mongodb sources),
:func:`data_fingerprint`, :func:`regression_metrics`, :class:`TrainingDiverged`.
Submodules import torch; import them lazily from CLI code.
"""

__all__ = [
    "Dataset",
    "TrainConfig",
    "TrainingDiverged",
    "data_fingerprint",
    "evaluate",
    "fine_tune",
    "load_data",
    "regression_metrics",
    "train_property_model",
]


def __getattr__(name):  # lazy: `import motif_screen.training.qm9` must not pull in torch
    if name in ("train_property_model", "fine_tune", "evaluate", "TrainingDiverged"):
        from motif_screen.training import loop

        return getattr(loop, name)
    if name in ("load_data", "data_fingerprint", "Dataset"):
        from motif_screen.training import datasets

        return getattr(datasets, name)
    if name == "TrainConfig":
        from motif_screen.training.config import TrainConfig

        return TrainConfig
    if name == "regression_metrics":
        from motif_screen.training.metrics import regression_metrics

        return regression_metrics
    raise AttributeError(f"module 'motif_screen.training' has no attribute {name!r}")
