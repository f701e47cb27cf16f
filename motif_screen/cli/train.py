"""``motif-screen train --config cfg.yaml``: train a property model (or the autoencoder) from a YAML file."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from motif_screen.cli.common import add_db_options, connect_from_args, settings_from_args
from motif_screen.errors import ConfigError

HELP = "train a property model or the autoencoder from a YAML config"
DESCRIPTION = """\
Train from a YAML config. `task: property` (default) trains the encoder + property heads:

  task: property
  data: {source: csv, path: perov_5/val.csv}   # or files / qm9 / mongodb
  targets: [heat_ref]
  preset: S            # encoder size (cutoff, lmax, channels... are set by the preset)
  epochs: 100
  seed: 0
  early_stopping: {patience: 15}

Data sources: `csv` (a `cif` column + property columns), `files` (path: folder/glob/list of
CIF/POSCAR/extxyz, labels: a CSV with a `file` column), `qm9` (n: 10000), `mongodb` (successful
DFT oracle results of the configured database; campaign: NAME). Relative paths are read from
the config file's folder. Rows and structures that cannot be used are skipped and named; a label
column without any number is refused. The best and final checkpoints go to --out (default:
<config-dir>/models/<name>-<time>); --register NAME stores the final one as the next
ModelVersion of NAME in MongoDB. `task: autoencoder` trains the structure autoencoder from a
recipe (see motif_screen/pretrained/perov5_autoencoder.yaml; its paths are read from the
working directory). `task: heads` trains new property heads on the frozen latents of a trained
autoencoder (encoder and decoder kept, so generation is unchanged), e.g. on the oracle's own values
from `motif-screen label` (see motif_screen/pretrained/perov5_heads.yaml).
"""

# The training modules import torch: they are imported inside the functions below, so that
# `motif-screen --help` (which imports every verb module) stays fast.


def add_arguments(parser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="YAML training config")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for checkpoints (default: <config-dir>/models/...)"
    )
    parser.add_argument(
        "--register", metavar="NAME", default=None, help="register the trained model as a ModelVersion NAME"
    )
    parser.add_argument("--promote", action="store_true", help="mark the registered version as the one screening uses")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--refit-prior",
        action="store_true",
        help="task: autoencoder only: refit the latent prior (prior_components) of the recipe's trained "
        "`output` checkpoint on its training split and write it back, instead of training",
    )
    add_db_options(parser)


def _register(name: str, checkpoint, metrics: dict, data_fingerprint, config: dict, conn, promote: bool) -> None:
    from motif_screen.training.registry import register_model_version

    doc = register_model_version(
        name, checkpoint, metrics=metrics, data_fingerprint=data_fingerprint, config=config, promoted=promote
    )
    conn.flush()
    print(f"registered {name} v{doc.version}{' (promoted)' if doc.promoted else ''} in {conn.description}")


def _train_autoencoder(values: dict, args) -> int:
    from motif_screen.training.autoencoder import refit_latent_prior, train_autoencoder
    from motif_screen.training.config import AutoencoderTrainConfig

    if args.out:
        values["out_dir"] = str(args.out)
    register = args.register or values.pop("register", None)
    recipe = AutoencoderTrainConfig.from_dict(values)  # a bad recipe fails before the database is touched
    if register and not (recipe.output or recipe.out_dir):
        raise ConfigError("--register needs the recipe's `output:` checkpoint path (or --out)")
    conn = None
    if register:  # connect first: a missing database fails before an hour of training, not after
        conn, _ = connect_from_args(args, readonly=False)
    if args.refit_prior:
        model, metrics = refit_latent_prior(recipe)
        print(f"latent prior refit ({recipe.output}): {metrics}")
    else:
        model, metrics = train_autoencoder(recipe)
        print(f"autoencoder training finished: {metrics}")
    if register:
        info = model.checkpoint_info
        checkpoint = recipe.output if args.refit_prior else info["config"]["output"]
        _register(register, checkpoint, metrics, info.get("data_fingerprint"), info["config"], conn, args.promote)
    return 0


def _train_heads(values: dict, args) -> int:
    from motif_screen.training.config import HeadsTrainConfig
    from motif_screen.training.latent_heads import train_latent_heads

    if args.refit_prior:
        raise ConfigError("--refit-prior applies to `task: autoencoder` recipes")
    register = args.register or values.pop("register", None)
    recipe = HeadsTrainConfig.from_dict(values)  # a bad recipe fails before the database is touched
    if args.out:
        recipe.output = str(Path(args.out) / f"{recipe.name or Path(recipe.base).stem}.pt")
    if register and not recipe.output:
        raise ConfigError("--register needs the recipe's `output:` checkpoint path (or --out)")
    conn = connect_from_args(args, readonly=False)[0] if register else None
    model, metrics = train_latent_heads(recipe)
    for target in model.config.properties:
        shown = [
            f"{part} MAE {metrics.get(f'{part}_mae_{target}')}, Spearman {metrics.get(f'{part}_spearman_{target}')}, "
            f"1σ/2σ coverage {metrics.get(f'{part}_coverage_1sigma_{target}')}/"
            f"{metrics.get(f'{part}_coverage_2sigma_{target}')}"
            for part in ("calibration", "test")
            if metrics.get(f"{part}_count_{target}")
        ]
        print(f"  {target}: " + "; ".join(shown))
    print(f"checkpoint: {recipe.output or '(not written: the recipe names no output)'}")
    if register and conn is not None:
        info = model.checkpoint_info
        _register(register, recipe.output, metrics, info.get("data_fingerprint"), info["config"], conn, args.promote)
    return 0


def run(args) -> int:
    from motif_screen.training.config import TrainConfig, load_yaml

    values = load_yaml(args.config)
    task = values.get("task", "property")
    if task == "autoencoder":
        return _train_autoencoder(values, args)
    if task == "heads":
        return _train_heads(values, args)
    if task != "property":
        raise ConfigError(f"{args.config}: task must be `property`, `autoencoder` or `heads`, got {task!r}")
    if args.refit_prior:
        raise ConfigError("--refit-prior applies to `task: autoencoder` recipes (property models have no latent prior)")

    register = args.register or values.pop("register", None)
    settings = settings_from_args(args)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or values.get("out_dir") or settings.models_path / f"{register or 'property'}-{stamp}"
    values["out_dir"] = str(Path(out).expanduser())
    if args.quiet:
        values["progress"] = False
    config = TrainConfig.from_dict(values)
    if not config.targets:
        raise ConfigError(f"{args.config} names no `targets` to train on")
    if not config.data:
        raise ConfigError(f"{args.config} has no `data:` section (source: csv | files | qm9 | mongodb)")

    conn = None
    if config.data.get("source") == "mongodb" or register:
        conn, _ = connect_from_args(args, readonly=not register)

    from motif_screen.training.datasets import load_data
    from motif_screen.training.loop import train_property_model

    dataset = load_data(config.data, config.targets, base_dir=Path(args.config).expanduser().resolve().parent)
    print(f"data: {dataset.description}")
    model, metrics = train_property_model(dataset.structures, dataset.targets, config, names=dataset.names)
    print(
        f"trained on {metrics['n_train']} structures ({metrics['n_val']} for validation), "
        f"{metrics['epochs_run']} epochs, best epoch {metrics['best_epoch']}, stopped by {metrics['stopped']}"
    )
    if metrics["skipped_structures"]:
        print(f"  {metrics['skipped_structures']} structure(s) could not be used (see the warning above)")
    for target in model.targets:
        mae = metrics.get(f"val_{target}_mae")
        if mae is not None:
            print(
                f"  {target}: validation MAE {mae:.4g}, RMSE {metrics[f'val_{target}_rmse']:.4g}, "
                f"1σ coverage {metrics[f'val_{target}_coverage_1sigma']:.2f} (calibrated on this split)"
            )
    print(f"checkpoint: {metrics['checkpoint']}")
    if register:
        _register(
            register,
            metrics["checkpoint"],
            {k: v for k, v in metrics.items() if k != "history"},
            metrics["data_fingerprint"],
            config.to_dict(),
            conn,
            args.promote,
        )
    return 0
