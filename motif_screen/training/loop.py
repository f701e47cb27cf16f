"""Training and evaluation of a :class:`~motif_screen.model.PropertyModel`.

Graphs are built once (parsing and neighbour lists cost more than a training step on small
cells), then each epoch shuffles, collates and steps. Early stopping watches the validation MAE
in normalised units; the best weights are kept (and written to ``out_dir/best.pt``). A non-finite
loss stops the run with :class:`TrainingDiverged`, restoring and saving the last good weights.
After training the ensemble's variance is recalibrated on the validation split.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from motif_screen.errors import InputError, ModelError
from motif_screen.graphs import collate, to_graph
from motif_screen.model.checkpoint import save_checkpoint
from motif_screen.model.property_model import MEAN, STD, PropertyModel, build_property_model
from motif_screen.training.config import TrainConfig
from motif_screen.training.fingerprint import data_fingerprint
from motif_screen.training.metrics import regression_metrics, std_scale_factor
from motif_screen.training.usable import usable_graphs

__all__ = ["TrainingDiverged", "evaluate", "train_property_model"]


class TrainingDiverged(ModelError):
    """The loss became NaN/inf; ``.model`` holds the last good weights, ``.checkpoint`` where they were saved."""

    def __init__(self, message: str, model=None, checkpoint=None, metrics=None):
        super().__init__(message)
        self.model, self.checkpoint, self.metrics = model, checkpoint, metrics


def _as_config(config) -> TrainConfig:
    return config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)


def _label_matrix(targets: dict, names: list[str], n: int) -> torch.Tensor:
    columns = []
    for name in names:
        values = targets.get(name)
        if values is None:
            columns.append(np.full(n, np.nan))
            continue
        if len(values) != n:
            raise InputError(f"target {name} has {len(values)} values for {n} structures")
        columns.append(np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64))
    matrix = np.stack(columns, axis=1) if columns else np.zeros((n, 0))
    matrix[~np.isfinite(matrix)] = np.nan
    return torch.tensor(matrix, dtype=torch.get_default_dtype())


def _loss(out, y, weights, nll_weight: float):
    """Bootstrap-weighted MSE of each head's mean + Gaussian NLL of its variance (mean detached)."""
    mu, log_var = out["head_mean"], out["head_log_var"]  # (K, B, T)
    mask = torch.isfinite(y)
    y0 = torch.where(mask, y, torch.zeros_like(y))
    w = weights.T.unsqueeze(-1) * mask.unsqueeze(0).to(mu.dtype)  # (K, B, T)
    denom = w.sum().clamp(min=1.0)
    mse = (w * (mu - y0) ** 2).sum() / denom
    nll = (w * 0.5 * (log_var + (mu.detach() - y0) ** 2 * torch.exp(-log_var))).sum() / denom
    return mse + nll_weight * nll, mse


@torch.no_grad()
def _predict_graphs(model: PropertyModel, graphs, batch_size: int = 256):
    model.eval()
    means, stds = [], []
    for start in range(0, len(graphs), batch_size):
        out = model(collate(graphs[start : start + batch_size]))
        means.append(out[MEAN])
        stds.append(out[STD])
    return torch.cat(means).double().numpy(), torch.cat(stds).double().numpy()


def _normalised_mae(model, graphs, labels) -> float:
    mean, _ = _predict_graphs(model, graphs)
    scale = model.scaler.scale.double().numpy()
    err = np.abs(mean - labels.double().numpy()) / scale
    per_target = [np.nanmean(err[:, t]) for t in range(err.shape[1]) if np.isfinite(err[:, t]).any()]
    return float(np.mean(per_target)) if per_target else float("nan")


def _calibrate(model, graphs, labels) -> list[float]:
    model.scaler.std_factor.fill_(1.0)
    mean, std = _predict_graphs(model, graphs)
    y = labels.double().numpy()
    factors = []
    for t in range(y.shape[1]):
        keep = np.isfinite(y[:, t])
        factor = std_scale_factor(y[keep, t], mean[keep, t], std[keep, t]) if keep.sum() >= 2 else 1.0
        model.scaler.std_factor[t] = factor
        factors.append(factor)
    return factors


def _fit(model: PropertyModel, graphs, labels: torch.Tensor, config: TrainConfig) -> dict:
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    n = len(graphs)
    order = rng.permutation(n)
    n_val = int(round(n * config.val_fraction)) if n >= 10 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    model.scaler.fit(labels[train_idx])
    model.scaler.std_factor.fill_(1.0)
    y_norm = model.scaler.normalise(labels)
    k = model.heads.ensemble_size
    weights = torch.tensor(
        rng.poisson(1.0, size=(n, k)) if (config.bootstrap and k > 1) else np.ones((n, k)), dtype=labels.dtype
    )
    val_graphs, val_labels = [graphs[i] for i in val_idx], labels[val_idx]
    monitor_graphs, monitor_labels = (
        (val_graphs, val_labels) if n_val else ([graphs[i] for i in train_idx], labels[train_idx])
    )

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(2, config.patience // 3))
    out_dir = Path(config.out_dir).expanduser() if config.out_dir else None
    best_score, best_epoch, bad_epochs = math.inf, 0, 0
    best_state = copy.deepcopy(model.state_dict())
    history, stopped = [], "epochs"
    start = time.perf_counter()
    bar = tqdm(range(1, config.epochs + 1), desc="training", unit="epoch", disable=not config.progress, leave=False)
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        perm = train_idx[rng.permutation(len(train_idx))]
        for s in range(0, len(perm), config.batch_size):
            idx = perm[s : s + config.batch_size]
            out = model(collate([graphs[i] for i in idx]))
            loss, mse = _loss(out, y_norm[idx], weights[idx], config.nll_weight)
            if not torch.isfinite(loss):
                model.load_state_dict(best_state)
                saved = None
                if out_dir is not None:
                    saved = save_checkpoint(
                        out_dir / "last_good.pt",
                        model,
                        config=config.to_dict(),
                        metrics={"best_epoch": best_epoch, "diverged_epoch": epoch},
                    )
                where = f"saved to {saved}" if saved else "kept in memory"
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch} (loss became {loss.item()}); the last good model "
                    f"(epoch {best_epoch}) was {where}; try a lower lr than {config.lr:g}",
                    model=model,
                    checkpoint=saved,
                    metrics={"best_epoch": best_epoch, "diverged_epoch": epoch},
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            total += loss.item() * len(idx)
            count += len(idx)
        train_loss = total / max(count, 1)
        score = _normalised_mae(model, monitor_graphs, monitor_labels)
        scheduler.step(score if math.isfinite(score) else train_loss)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_mae_normalised": score})
        if math.isfinite(score) and score < best_score - config.min_delta:
            best_score, best_epoch, bad_epochs = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
            if out_dir is not None:
                save_checkpoint(
                    out_dir / "best.pt",
                    model,
                    config=config.to_dict(),
                    metrics={"best_epoch": epoch, "val_mae_normalised": score},
                )
        else:
            bad_epochs += 1
        bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{score:.4f}", best=best_epoch)
        if bad_epochs >= config.patience:
            stopped = "early_stopping"
            break
        if config.max_minutes and time.perf_counter() - start > 60 * config.max_minutes:
            stopped = "time_budget"
            break
    bar.close()
    model.load_state_dict(best_state)
    factors = _calibrate(model, monitor_graphs, monitor_labels)
    model.eval()
    return {
        "n_train": int(len(train_idx)),
        "n_val": int(n_val),
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_mae_normalised": best_score,
        "stopped": stopped,
        "train_seconds": time.perf_counter() - start,
        "initial_train_loss": history[0]["train_loss"],
        "final_train_loss": history[-1]["train_loss"],
        "std_factors": dict(zip(model.targets, factors)),
        "history": history,
        "val_split": [int(i) for i in val_idx],
    }


def _finish(model, config, graphs, labels, fit_info, fingerprint, skipped):
    metrics = {k: v for k, v in fit_info.items() if k != "val_split"}
    val_idx = fit_info["val_split"]
    if val_idx:
        vg = [graphs[i] for i in val_idx]
        metrics.update(
            evaluate(model, vg, {t: labels[val_idx, j].tolist() for j, t in enumerate(model.targets)}, prefix="val_")
        )
    metrics["skipped_structures"] = len(skipped)
    metrics["data_fingerprint"] = fingerprint
    metrics["task"] = "train"
    model.checkpoint_info = {"config": config.to_dict(), "metrics": metrics, "data_fingerprint": fingerprint}
    if config.out_dir:
        path = save_checkpoint(
            Path(config.out_dir).expanduser() / "model.pt",
            model,
            config=config.to_dict(),
            metrics=metrics,
            data_fingerprint=fingerprint,
        )
        metrics["checkpoint"] = str(path)
    return model, metrics


def _check_labels(labels: torch.Tensor, names: list[str], n_usable: int) -> None:
    """Refuse a target with no label among the usable structures: it would train on nothing."""
    for j, name in enumerate(names):
        if not bool(torch.isfinite(labels[:, j]).any()):
            raise InputError(
                f"target {name} has no numeric value among the {n_usable} usable structures: nothing to train on"
            )


def train_property_model(structures, targets: dict, config, names=None) -> tuple[PropertyModel, dict]:
    """Train a new PropertyModel on ``structures`` (pymatgen/ASE objects or pre-built graphs).

    ``targets``: {name: [value or None per structure]}; missing labels are masked, a target with
    no label at all is refused. ``names`` (one per structure) name the structures that are skipped
    because they cannot be graphs. ``config``: a :class:`TrainConfig` or a dict of its fields.
    Returns the best model (eval mode, calibrated) and a metrics dict (validation
    MAE/RMSE/calibration per target, history, data fingerprint). Nothing is written when training
    is refused.
    """
    config = _as_config(config)
    structures = list(structures)
    target_names = list(config.targets or targets.keys())
    missing = [t for t in target_names if t not in targets]
    if missing:
        raise InputError(f"no labels given for target(s) {', '.join(missing)}")
    torch.manual_seed(config.seed)
    model = build_property_model(
        target_names, config.preset, config.ensemble_size, config.head_hidden, **config.encoder
    )
    labels = _label_matrix(targets, target_names, len(structures))
    usable = usable_graphs(structures, model.cutoff, model.vocabulary, config.max_atoms, names)
    labels = labels[usable.kept]
    _check_labels(labels, target_names, len(usable.kept))
    fingerprint = data_fingerprint(
        [structures[i] for i in usable.kept], {t: labels[:, j].tolist() for j, t in enumerate(target_names)}
    )
    info = _fit(model, usable.graphs, labels, config)
    return _finish(model, config, usable.graphs, labels, info, fingerprint, usable.skipped)


def evaluate(model: PropertyModel, structures, targets: dict, batch_size: int = 256, prefix: str = "") -> dict:
    """Flat metrics per target.

    Keys are ``{prefix}{target}_{metric}`` for metric in mae, rmse, coverage_1sigma, coverage_2sigma,
    miscalibration_area, ...
    """
    structures = list(structures)
    graphs = [s if isinstance(s, dict) else to_graph(s, model.cutoff, model.vocabulary) for s in structures]
    mean, std = _predict_graphs(model, graphs, batch_size)
    out = {}
    for j, t in enumerate(model.targets):
        if t not in targets:
            continue
        y = np.array([np.nan if v is None else float(v) for v in targets[t]], dtype=float)
        for key, value in regression_metrics(y, mean[:, j], std[:, j]).items():
            out[f"{prefix}{t}_{key}"] = value
    return out
