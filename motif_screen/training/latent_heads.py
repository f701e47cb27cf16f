"""Property heads on the frozen latents of a trained autoencoder, trained on the oracle's own quantity.

``train_latent_heads(recipe) -> (model, metrics)`` (``task: heads``, e.g.
``motif_screen/pretrained/perov5_heads.yaml``): the encoder, decoder and latent prior of the base
checkpoint stay as they are, so generation is unchanged; the ensemble heads are replaced by new
ones, one output per named target, each trained on its own data (perov-5's ``heat_ref`` under the
name ``heat_ref``; CHGNet formation energies of relaxed generated candidates under the name
``formation_energy_per_atom``, the number the campaign's CHGNet oracle returns).

Splits are by chemistry, never by row: rows whose composition holds a test element are held out
for testing (``test_elements``); of the rest, whole compositions (reduced formulas) are held out
to scale σ (``calibration_fraction``: post-hoc variance scaling on held-out *screened-like* cells,
so σ means what it says on the candidates a campaign ranks) and for early stopping
(``validation_fraction``). Rows marked ``split: train`` (e.g. perov-5 cells relaxed by CHGNet) only
ever train.

Why σ stays sane out of distribution: the aleatoric log-variance of each head is bounded by
:data:`motif_screen.model.heads.MAX_LOG_VARIANCE` (an aleatoric σ larger than twice the spread of
the training labels says nothing), so an unfamiliar latent no longer yields σ of tens of eV/atom.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch

from motif_screen.errors import ConfigError, InputError
from motif_screen.model.autoencoder import StructureAutoencoder
from motif_screen.model.checkpoint import load_autoencoder, save_autoencoder
from motif_screen.model.heads import EnsembleHeads, TargetScaler, ensemble_moments
from motif_screen.training.config import HeadsTrainConfig
from motif_screen.training.datasets import check_sources, load_data
from motif_screen.training.fingerprint import data_fingerprint
from motif_screen.training.metrics import regression_metrics, spearman, std_scale_factor

__all__ = [
    "HeadData",
    "HeadFit",
    "chemistry_split",
    "fit_heads",
    "load_head_data",
    "pick_test_elements",
    "predict_heads",
    "train_latent_heads",
]

ANIONS = frozenset({"O", "N", "F", "S", "Cl", "Se", "Br", "I", "Te", "H", "C", "P"})
SPLIT_ROLES = ("auto", "train")


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
@dataclass
class HeadData:
    """Rows of every target: structures, labels (N, T) with NaN where a row has no label of a target."""

    targets: list[str]
    structures: list
    y: np.ndarray
    names: list[str]
    roles: list[str]  # "auto" | "train"
    descriptions: list[str] = field(default_factory=list)

    @property
    def formulas(self) -> list[str]:
        return [s.composition.reduced_formula for s in self.structures]

    @property
    def elements(self) -> list[frozenset[str]]:
        return [frozenset(el.symbol for el in s.composition.elements) for s in self.structures]


def load_head_data(cfg: HeadsTrainConfig, base_dir=None) -> HeadData:
    """Every target's data specs, loaded and stacked; one oracle source per target unless allowed."""
    targets = list(cfg.targets)
    if not targets:
        raise ConfigError("a heads recipe needs at least one target under `targets:`")
    structures, names, roles, rows, descriptions = [], [], [], [], []
    for t, target in enumerate(targets):
        specs = cfg.targets[target]
        if isinstance(specs, dict):
            specs = [specs]
        sources: list[str] = []
        for spec in specs:
            spec = dict(spec)
            column = str(spec.pop("column", target))
            role = str(spec.pop("split", "auto"))
            relative = bool(spec.pop("relative_to_lowest", False))
            if role not in SPLIT_ROLES:
                raise ConfigError(f"target {target}: split must be one of {', '.join(SPLIT_ROLES)}, got {role!r}")
            if spec.get("source") == "labels":
                spec.setdefault("allow_mixed_sources", cfg.allow_mixed_sources)
            dataset = load_data(spec, [column], base_dir=base_dir)
            values = np.asarray(dataset.targets[column], dtype=float)
            keep = np.flatnonzero(np.isfinite(values))
            description = f"{target} <- {dataset.description}"
            if relative and len(keep):  # energies of one elemental system above its lowest-energy cell
                lowest = float(values[keep].min())
                values = values - lowest
                description += f", {column} minus its lowest value {lowest:.6g}"
            descriptions.append(description)
            sources += [dataset.sources[i] if dataset.sources else f"{spec.get('source')} data" for i in keep]
            for i in keep:
                label = np.full(len(targets), np.nan)
                label[t] = values[i]
                structures.append(dataset.structures[i])
                names.append(dataset.names[i] if dataset.names else f"{target}:{i}")
                roles.append(role)
                rows.append(label)
        check_sources(sources, f"the data of head {target}", cfg.allow_mixed_sources)
        if not sources:
            raise InputError(f"head {target} has no labelled row in its data")
    return HeadData(targets, structures, np.stack(rows), names, roles, descriptions)


def pick_test_elements(elements: list[frozenset[str]], n: int, seed: int) -> list[str]:
    """``n`` cation elements drawn (seeded) from those in ``elements``: the held-out chemistry."""
    cations = sorted({e for row in elements for e in row} - ANIONS)
    if n > len(cations):
        raise ConfigError(f"test_elements: {n} requested, the data has {len(cations)} cation elements")
    return sorted(random.Random(seed).sample(cations, n))


MIN_COMPOSITIONS = 20  # fewer distinct compositions than this: held-out groups are single structures


def split_by_structure(formulas: list[str], rows: list[int]) -> bool:
    """Whether ``rows`` hold too few compositions to hold whole compositions out (one family of
    polymorphs, e.g. carbon allotropes): then calibration and early stopping hold out structures."""
    return len({formulas[i] for i in rows}) < MIN_COMPOSITIONS


def group_key(formulas: list[str], rows: list[int]) -> dict:
    """row -> the group it is held out with: its reduced formula, or itself (:func:`split_by_structure`)."""
    by_row = split_by_structure(formulas, rows)
    return {i: (f"row {i}" if by_row else formulas[i]) for i in rows}


def chemistry_split(
    data: HeadData,
    test_elements,
    calibration_fraction: float,
    validation_fraction: float,
    seed: int,
    test_targets: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Row indices ``train``, ``validation``, ``calibration``, ``test`` (and ``excluded``).

    * test: ``auto`` rows of a test target whose composition holds a test element;
    * excluded: every other row with a test element (its chemistry must stay unseen), and ``train``
      rows of a held-out composition;
    * calibration / validation: whole compositions of the remaining ``auto`` rows (one draw for all
      targets, so no head trains on a composition another head is calibrated or stopped on); with
      fewer than ``MIN_COMPOSITIONS`` compositions (polymorphs of one formula), single structures;
    * train: the rest, ``train`` rows included.
    """
    held = set(test_elements)
    tested = set(test_targets or data.targets)
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {k: [] for k in ("train", "validation", "calibration", "test", "excluded")}
    formulas, elements = data.formulas, data.elements
    free: list[int] = []
    for t, target in enumerate(data.targets):
        for i in np.flatnonzero(np.isfinite(data.y[:, t])).tolist():
            if elements[i] & held:
                out["test" if data.roles[i] == "auto" and target in tested else "excluded"].append(i)
            elif data.roles[i] == "train":
                out["train"].append(i)
            else:
                free.append(i)
    # one draw of compositions for every head: a composition held out for one is held out for all.
    # A family of few compositions (carbon allotropes: one) cannot be split by composition; there
    # each structure is its own group, so polymorphs are held out instead
    key = group_key(formulas, free)
    groups = sorted({key[i] for i in free})
    groups = [groups[k] for k in rng.permutation(len(groups))]
    n_cal = int(round(len(groups) * calibration_fraction))
    n_val = int(round((len(groups) - n_cal) * validation_fraction))
    cal, val = set(groups[:n_cal]), set(groups[n_cal : n_cal + n_val])
    for i in free:
        out["calibration" if key[i] in cal else "validation" if key[i] in val else "train"].append(i)
    # a training-only row of a held-out composition would leak it
    leaking = {i for i in out["train"] if data.roles[i] == "train" and formulas[i] in cal | val}
    out["train"] = [i for i in out["train"] if i not in leaking]
    out["excluded"] += sorted(leaking)
    return {k: np.asarray(sorted(v), dtype=int) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# fitting heads on latents
# --------------------------------------------------------------------------------------------
@dataclass
class HeadFit:
    heads: EnsembleHeads
    scaler: TargetScaler
    info: dict


def _nll_per_target(mean, log_var, y, weights=None) -> torch.Tensor:
    """Gaussian NLL (K, B, T) averaged per target over its known labels, then over targets."""
    target = y[None].expand_as(mean)
    known = torch.isfinite(target).to(mean.dtype)
    nll = 0.5 * (log_var + (mean - torch.nan_to_num(target)) ** 2 / log_var.exp())
    w = known if weights is None else known * weights[..., None]
    per_target = (nll * w).sum((0, 1)) / w.sum((0, 1)).clamp(min=1e-12)
    present = w.sum((0, 1)) > 0
    return per_target[present].mean()


def fit_heads(
    latents: torch.Tensor,
    y: np.ndarray,
    train: np.ndarray,
    validation: np.ndarray | None = None,
    *,
    ensemble_size: int = 5,
    epochs: int = 600,
    patience: int = 60,
    batch_size: int = 256,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    bootstrap: bool = True,
    seed: int = 0,
) -> HeadFit:
    """New ensemble heads and target normalisation fitted on ``latents[train]`` (σ factors 1).

    Early stopping on the validation rows' NLL (the best epoch's weights are kept) when given."""
    generator = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    dtype = latents.dtype
    y_all = torch.as_tensor(np.asarray(y, dtype=float), dtype=dtype)
    if not torch.isfinite(y_all[train]).any():
        raise InputError("no finite label among the training rows")
    num_targets = y_all.shape[1]
    heads = EnsembleHeads(latents.shape[1], num_targets, ensemble_size).to(dtype)
    scaler = TargetScaler(num_targets).to(dtype)
    scaler.fit(y_all[train])
    y_norm = scaler.normalise(y_all)
    z_train, y_train = latents[train], y_norm[train]
    weights = (
        torch.poisson(torch.ones(ensemble_size, len(train), dtype=dtype), generator=generator)
        if bootstrap and ensemble_size > 1
        else torch.ones(ensemble_size, len(train), dtype=dtype)
    )
    optimizer = torch.optim.AdamW(heads.parameters(), lr=float(lr), weight_decay=float(weight_decay))
    best, best_loss, best_epoch, waited, epoch = None, math.inf, 0, 0, 0
    has_val = validation is not None and len(validation) and torch.isfinite(y_norm[validation]).any()
    for epoch in range(1, int(epochs) + 1):
        heads.train()
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(order), int(batch_size)):
            idx = order[start : start + int(batch_size)]
            loss = _nll_per_target(*heads.forward(z_train[idx]), y_train[idx], weights[:, idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if not torch.isfinite(loss):
            raise InputError("head training diverged (non-finite loss)")
        if has_val:
            heads.eval()
            with torch.no_grad():
                val_loss = float(_nll_per_target(*heads.forward(latents[validation]), y_norm[validation]))
            if val_loss < best_loss - 1e-4:
                best_loss, best_epoch, waited = val_loss, epoch, 0
                best = {k: v.detach().clone() for k, v in heads.state_dict().items()}
            else:
                waited += 1
                if waited >= int(patience):
                    break
    if best is not None:
        heads.load_state_dict(best)
    heads.eval()
    info = {"epochs_run": epoch, "best_epoch": best_epoch or epoch, "validation_nll": best_loss if has_val else None}
    return HeadFit(heads, scaler, info)


def predict_heads(fit: HeadFit, latents: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) arrays (N, T) in the targets' units, σ factors applied."""
    with torch.no_grad():
        mean, var = ensemble_moments(*fit.heads.forward(latents))
        mean, std = fit.scaler.denormalise(mean, var)
    return mean.double().numpy(), std.double().numpy()


def calibrate(fit: HeadFit, latents: torch.Tensor, y: np.ndarray, rows: np.ndarray) -> list[float]:
    """Post-hoc variance scaling: each target's σ factor fitted on ``rows`` (σ factor 1 without labels)."""
    std_factor = cast(torch.Tensor, fit.scaler.std_factor)
    std_factor.fill_(1.0)
    if not len(rows):
        return [1.0] * y.shape[1]
    mean, std = predict_heads(fit, latents[rows])
    factors = []
    for t in range(y.shape[1]):
        known = np.isfinite(y[rows, t])
        factor = std_scale_factor(y[rows, t][known], mean[known, t], std[known, t]) if known.sum() >= 2 else 1.0
        std_factor[t] = factor
        factors.append(float(factor))
    return factors


def scored(y, mean, std) -> dict:
    """MAE, RMSE, Spearman, 1σ/2σ coverage, miscalibration area, median and max σ of one target's rows."""
    y, mean, std = (np.asarray(a, dtype=float) for a in (y, mean, std))
    keep = np.isfinite(y)
    y, mean, std = y[keep], mean[keep], std[keep]
    if not y.size:
        return {"count": 0}
    out = regression_metrics(y, mean, std)
    out["spearman"] = spearman(mean, y)
    out["median_std"] = float(np.median(std))
    out["max_std"] = float(np.max(std))
    return {k: (round(v, 5) if isinstance(v, float) and math.isfinite(v) else v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# the recipe
# --------------------------------------------------------------------------------------------
def _recipe(config) -> HeadsTrainConfig:
    return config if isinstance(config, HeadsTrainConfig) else HeadsTrainConfig.from_dict(config)


def install_heads(model: StructureAutoencoder, fit: HeadFit, targets: list[str]) -> None:
    """Replace the model's heads, normalisation and σ factors with ``fit``'s (encoder/decoder untouched)."""
    model.config.properties = list(targets)
    model.config.ensemble_size = int(fit.heads.ensemble_size)
    model.heads = fit.heads
    model.target_scaler = fit.scaler


def train_latent_heads(config, base_dir=None, log=print):
    """Train the heads a recipe describes; returns ``(model, metrics)`` and writes ``output`` if named."""
    cfg = _recipe(config)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    model = load_autoencoder(cfg.base)
    base_info = dict(getattr(model, "checkpoint_info", None) or {})
    base_config = dict(base_info.get("config") or {})
    if "heads_recipe" in base_config:  # heads trained again: the autoencoder's own record stays the base
        base_metrics = {k[5:]: v for k, v in (base_info.get("metrics") or {}).items() if k.startswith("base_")}
        base_fingerprint = base_config.get("base_data_fingerprint")
    else:
        base_metrics = dict(base_info.get("metrics") or {})
        base_fingerprint = base_info.get("data_fingerprint")
    data = load_head_data(cfg, base_dir)
    for line in data.descriptions:
        log(f"data: {line}")
    held = (
        pick_test_elements([e for e, r in zip(data.elements, data.roles) if r == "auto"], cfg.test_elements, cfg.seed)
        if isinstance(cfg.test_elements, int)
        else sorted(cfg.test_elements)
    )
    split = chemistry_split(data, held, cfg.calibration_fraction, cfg.validation_fraction, cfg.seed, cfg.test_targets)
    kept = np.concatenate([split["train"], split["validation"], split["calibration"]]).tolist()
    by_structure = split_by_structure(data.formulas, [i for i in kept if data.roles[i] == "auto"])
    log(
        "split: "
        + ", ".join(f"{k} {len(v)}" for k, v in split.items())
        + f"; test elements {', '.join(held) or '-'}"
        + (f"; held out by structure (fewer than {MIN_COMPOSITIONS} compositions)" if by_structure else "")
    )
    latents = model.encode(data.structures)
    with torch.no_grad():
        base_predictions = {
            name: (m.double().numpy(), s.double().numpy()) for name, (m, s) in model.predict_properties(latents).items()
        }
    fit = fit_heads(
        latents,
        data.y,
        split["train"],
        split["validation"],
        ensemble_size=cfg.ensemble_size,
        epochs=cfg.epochs,
        patience=cfg.patience,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        bootstrap=cfg.bootstrap,
        seed=cfg.seed,
    )
    factors = calibrate(fit, latents, data.y, split["calibration"])
    mean, std = predict_heads(fit, latents)
    metrics: dict = {
        "epochs_run": fit.info["epochs_run"],
        "best_epoch": fit.info["best_epoch"],
        **{f"n_{k}": int(len(v)) for k, v in split.items()},
        "split_by_structure": int(by_structure),
    }
    for t, target in enumerate(data.targets):
        metrics[f"std_factor_{target}"] = factors[t]
        for part in ("calibration", "test"):
            rows = split[part]
            for k, v in scored(data.y[rows, t], mean[rows, t], std[rows, t]).items():
                metrics[f"{part}_{k}_{target}"] = v
            if target in base_predictions:  # the base model's head of the same name, on the same rows
                bm, bs = base_predictions[target]
                for k, v in scored(data.y[rows, t], bm[rows], bs[rows]).items():
                    metrics[f"{part}_base_{k}_{target}"] = v
    used = np.concatenate([split[k] for k in ("train", "validation", "calibration", "test")])
    fingerprint = data_fingerprint(
        [data.structures[i] for i in used], {t: data.y[used, k].tolist() for k, t in enumerate(data.targets)}
    )
    install_heads(model, fit, data.targets)
    model.model_name = str(cfg.name or model.model_name)
    recorded = {
        **base_config,
        "name": model.model_name,
        "heads_recipe": cfg.to_dict(),
        "heads_test_elements": held,
        "base_data_fingerprint": base_fingerprint,
    }
    merged = {**{f"base_{k}": v for k, v in base_metrics.items()}, **metrics}
    model.checkpoint_info = {"config": recorded, "metrics": merged, "data_fingerprint": fingerprint}
    if cfg.output:
        Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
        save_autoencoder(model, cfg.output, config=recorded, metrics=merged, data_fingerprint=fingerprint)
    return model, metrics
