"""motif_screen.training: datasets, training loops, metrics, configs and the model registry.

Public surface:

- property models (:mod:`.loop`): :func:`train_property_model`, :func:`evaluate`, :class:`TrainingDiverged`
- the autoencoder (:mod:`.autoencoder`): :func:`train_autoencoder`; its property heads on oracle
  results (:mod:`.finetune`): :func:`fine_tune_heads`
- atom completion (:mod:`.completion`): :func:`train_completion`, :func:`evaluate_completion`
- configs (:mod:`.config`): :class:`TrainConfig`, :class:`AutoencoderTrainConfig`, :class:`CompletionConfig`
- data (:mod:`.datasets`): :func:`load_data`, :func:`load_csv`, :class:`Dataset`;
  :func:`data_fingerprint` (:mod:`.fingerprint`); :func:`regression_metrics` (:mod:`.metrics`)
- model versions in MongoDB (:mod:`.registry`): :func:`register_model_version`, :func:`load_model_version`

Importing this package imports torch; CLI verbs import it only when they run.
"""

from motif_screen.training.autoencoder import train_autoencoder
from motif_screen.training.completion import evaluate_completion, train_completion
from motif_screen.training.config import AutoencoderTrainConfig, CompletionConfig, TrainConfig
from motif_screen.training.datasets import Dataset, load_csv, load_data
from motif_screen.training.finetune import fine_tune_heads
from motif_screen.training.fingerprint import data_fingerprint
from motif_screen.training.loop import TrainingDiverged, evaluate, train_property_model
from motif_screen.training.metrics import regression_metrics
from motif_screen.training.registry import load_model_version, register_model_version

__all__ = [
    "AutoencoderTrainConfig",
    "CompletionConfig",
    "Dataset",
    "TrainConfig",
    "TrainingDiverged",
    "data_fingerprint",
    "evaluate",
    "evaluate_completion",
    "fine_tune_heads",
    "load_csv",
    "load_data",
    "load_model_version",
    "regression_metrics",
    "register_model_version",
    "train_autoencoder",
    "train_completion",
    "train_property_model",
]
