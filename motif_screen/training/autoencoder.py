"""Training the structure autoencoder end to end: ``train_autoencoder(config) -> (model, metrics)``.

``config`` is an :class:`~motif_screen.training.config.AutoencoderTrainConfig` or the dict of an
``autoencoder`` recipe (YAML, see ``motif_screen/pretrained/perov5_autoencoder.yaml``)::

    task: autoencoder
    data: perov_5/val.csv   # a CSV with a `cif` column (read by training.datasets.load_csv), or "qm9"
    properties: {formation_energy_per_atom: heat_ref}   # model property -> CSV column
    limit: null            # use only the first N structures (after shuffling)
    val_fraction: 0.1
    epochs: 100
    max_minutes: 20        # stop early (and say so in the metrics) when time runs out
    batch_size: 64
    lr: 0.002
    seed: 0
    threads: 2
    model: {encoder_preset: S, encoder_options: {}, latent_dim: 32, decoder: {}}
    output: perov5_autoencoder.pt

Graphs are built once (CIF parsing is the slow part), then every epoch reshuffles them. Rows and
structures that cannot be used (unreadable, overlapping atoms, more atoms than the decoder emits:
``model.decoder.max_atoms``, by default the data's largest cell + 2 up to
``DEFAULT_DECODER_MAX_ATOMS``) are skipped with their reason and counted (``skipped_structures``);
the run is refused, before anything is written, when too few remain.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from motif_screen import keys
from motif_screen.errors import ConfigError, InputError
from motif_screen.graphs import collate
from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
from motif_screen.model.checkpoint import load_autoencoder, save_autoencoder
from motif_screen.model.heads import heads_nll
from motif_screen.training.config import AutoencoderTrainConfig
from motif_screen.training.datasets import load_csv
from motif_screen.training.fingerprint import data_fingerprint
from motif_screen.training.metrics import regression_metrics, std_scale_factor
from motif_screen.training.qm9 import load_qm9
from motif_screen.training.usable import skip_summary, usable_graphs

__all__ = [
    "RecipeData",
    "development_split",
    "load_recipe_data",
    "recipe_data_fingerprint",
    "refine_heads",
    "refit_latent_prior",
    "train_autoencoder",
]


# the largest cell a decoder emits unless the recipe sets model.decoder.max_atoms (CDVAE's families:
# perov-5 5 atoms, MP-20 20, carbon-24 24, MPTS-52 52); larger cells of the data are skipped and counted
DEFAULT_DECODER_MAX_ATOMS = 100


def _recipe(config) -> AutoencoderTrainConfig:
    return config if isinstance(config, AutoencoderTrainConfig) else AutoencoderTrainConfig.from_dict(config)


@dataclass
class RecipeData:
    structures: list
    ids: list[str]
    targets: np.ndarray  # (N, P) in the order of the recipe's properties, NaN = missing
    periodic: bool


def load_recipe_data(cfg: AutoencoderTrainConfig) -> RecipeData:
    """The structures and property labels a recipe names: a CSV of CIFs, or QM9 molecules."""
    if cfg.data.lower() == "qm9":
        if cfg.properties:
            raise ConfigError(
                "property heads on QM9 are not wired into the autoencoder recipe; leave 'properties' empty"
            )
        molecules, _ = load_qm9(n=cfg.qm9.get("n", 5000), max_atoms=cfg.qm9.get("max_atoms"), seed=cfg.seed, targets=())
        return RecipeData(
            molecules, [str(m.properties.get("qm9_index")) for m in molecules], np.zeros((len(molecules), 0)), False
        )
    columns = list(cfg.properties.values())
    dataset = load_csv(cfg.data, columns)
    targets = np.stack([dataset.targets[c] for c in columns], axis=1) if columns else np.zeros((len(dataset), 0))
    return RecipeData(dataset.structures, dataset.names, targets, True)


@dataclass
class _Split:
    used: list[int]  # indices into the data, in shuffled order
    val: list[int]
    train: list[int]
    graphs: dict  # index -> graph
    skipped: list[str]


def _shuffled(n_structures: int, cfg: AutoencoderTrainConfig) -> list[int]:
    """The indices a recipe uses: a seeded shuffle, cut to ``limit``."""
    order = list(range(n_structures))
    random.Random(int(cfg.seed)).shuffle(order)
    return order[: int(cfg.limit)] if cfg.limit else order


def _split(data: RecipeData, cfg: AutoencoderTrainConfig, order: list[int], model) -> _Split:
    """``order`` without the structures that cannot be graphs or have more atoms than the decoder
    emits, validation first and training after."""
    usable = usable_graphs(
        [data.structures[i] for i in order],
        model.cutoff,
        model.config.elements,
        max_atoms=model.decoder.config.max_atoms,
        names=[f"structure {data.ids[i]}" for i in order],
        what="autoencoder training",
    )
    used = [order[k] for k in usable.kept]
    why = f" ({len(usable.skipped)} skipped: {skip_summary(usable.skipped)})" if usable.skipped else ""
    if len(used) < 2:
        raise InputError(f"the autoencoder needs at least 2 usable training structures, got {len(used)}{why}")
    n_val = max(1, int(round(len(used) * float(cfg.val_fraction)))) if cfg.val_fraction else 0
    if n_val >= len(used):
        raise InputError(f"val_fraction {cfg.val_fraction} leaves no training structure of {len(used)}{why}")
    return _Split(used, used[:n_val], used[n_val:], dict(zip(used, usable.graphs)), usable.skipped)


def _recipe_split(config, model) -> tuple[RecipeData, _Split]:
    cfg = _recipe(config)
    data = load_recipe_data(cfg)
    return data, _split(data, cfg, _shuffled(len(data.structures), cfg), model)


def _fingerprint(cfg: AutoencoderTrainConfig, data: RecipeData, split: _Split) -> str:
    return data_fingerprint(
        [data.structures[i] for i in split.used],
        {name: data.targets[split.used, p].tolist() for p, name in enumerate(cfg.properties)},
    )


def development_split(config, model) -> tuple[list, list[str], int]:
    """The structures (and their ids) a recipe held out of training as its validation split, and the
    number of structures it trained on, for ``model`` trained by it: the development split on which
    decoding settings are chosen, so the test set is scored once per choice made elsewhere. The same
    seeded shuffle and usability rules as training, so the split is exactly the one the weights never
    trained on."""
    data, split = _recipe_split(config, model)
    return [data.structures[i] for i in split.val], [data.ids[i] for i in split.val], len(split.train)


def recipe_data_fingerprint(config, model) -> str:
    """The data fingerprint training by this recipe records (for a checkpoint written before
    checkpoints recorded it: the same seeded draw, shuffle and usability rules)."""
    data, split = _recipe_split(config, model)
    return _fingerprint(_recipe(config), data, split)


def refit_latent_prior(config):
    """Refit only the latent prior of a recipe's trained checkpoint (its ``output``), on the same
    training split the recipe used, and write the checkpoint back; returns ``(model, summary)``.

    Minutes instead of the training run, for a prior setting (``prior_components``) changed after
    training; the network's weights are untouched, so encodings and decodings of given latents stay
    the same and only prior samples change."""
    cfg = _recipe(config)
    if not cfg.output or not Path(cfg.output).is_file():
        raise ConfigError(f"refitting the prior needs the recipe's trained checkpoint; `output` is {cfg.output!r}")
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    model = load_autoencoder(cfg.output)
    data = load_recipe_data(cfg)
    split = _split(data, cfg, _shuffled(len(data.structures), cfg), model)
    summary = model.fit_latent_prior(
        _latent_means(model, [split.graphs[i] for i in split.train]), cfg.prior_components, int(cfg.seed)
    )
    info = getattr(model, "checkpoint_info", None) or {}
    metrics = {**(info.get("metrics") or {}), **summary}
    recorded = {**(info.get("config") or {}), "prior_components": cfg.prior_components}
    save_autoencoder(model, cfg.output, config=recorded, metrics=metrics, data_fingerprint=info.get("data_fingerprint"))
    model.checkpoint_info = {**info, "config": {"name": model.model_name, **recorded}, "metrics": metrics}
    return model, summary


def _batches(indices: list[int], batch_size: int):
    for start in range(0, len(indices), batch_size):
        yield indices[start : start + batch_size]


def _collate(graphs, targets, idx):
    batch = collate([graphs[i] for i in idx])
    y = torch.as_tensor(targets[idx], dtype=torch.get_default_dtype()) if targets.shape[1] else None
    return batch, y


def _evaluate(model, graphs, targets, indices, batch_size, generator) -> dict:
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for idx in _batches(indices, batch_size):
            batch, y = _collate(graphs, targets, idx)
            terms = model.losses(batch, y, generator=generator)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
            count += len(idx)
    return {k: v / max(count, 1) for k, v in sums.items()}


def _learning_rate(base: float, step: int, total_steps: int, elapsed: float, budget: float) -> float:
    """Linear warm-up, then cosine decay driven by whichever runs out first, steps or time,
    so a run cut short by ``max_minutes`` still ends at a small learning rate."""
    warmup = max(1, min(200, total_steps // 20))
    if step < warmup:
        return base * step / warmup
    progress = min(1.0, max(step / max(total_steps, 1), elapsed / max(budget, 1e-9)))
    return base * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def refine_heads(
    model, graphs: list, targets=None, epochs: int = 200, lr: float = 3e-3, batch_size: int = 256, seed: int = 0
) -> dict:
    """Refit the small MLPs that read the latent (number of atoms, composition, lattice, property
    heads) with the encoder and the flow frozen.

    Why: in end-to-end training these heads learn at the pace of the expensive flow network
    (a few thousand steps on CPU), which is too few for a 50-way composition softmax. On cached
    latent means each epoch costs milliseconds, so they converge in seconds. Returns final losses.
    """
    model.eval()
    with torch.no_grad():
        chunks = [collate(graphs[i : i + batch_size]) for i in range(0, len(graphs), batch_size)]
        latents = torch.cat([model.encode_batch(b)[0] for b in chunks])
        num_nodes = torch.cat([b[keys.NUM_NODES] for b in chunks])
        counts = torch.cat([model.composition_features(b) for b in chunks]) * num_nodes[:, None]
        counts = counts.round().long()
        cells = torch.cat([b[keys.CELL] for b in chunks]) if model.config.periodic else None
    dec = model.decoder
    params = list(dec.num_atoms_head.parameters()) + list(dec.composition_head.parameters())
    if dec.lattice_head is not None:
        params += list(dec.lattice_head.parameters())
        lattice_target = (dec._scaled_lattice_params(cells, num_nodes) - dec.lattice_mean) / dec.lattice_std
    y = None
    if model.heads is not None and targets is not None and len(targets) and targets.shape[1]:
        params += list(model.heads.parameters())
        y = model.target_scaler.normalise(torch.as_tensor(targets, dtype=latents.dtype))
    optimizer = torch.optim.Adam(params, lr=lr)
    rng = torch.Generator().manual_seed(seed)
    last = {}
    for _ in range(int(epochs)):
        order = torch.randperm(len(latents), generator=rng)
        for start in range(0, len(order), 128):
            idx = order[start : start + 128]
            z = latents[idx]
            terms = {
                "num_atoms": torch.nn.functional.cross_entropy(
                    dec.num_atoms_head(z), num_nodes[idx].clamp(max=dec.config.max_atoms)
                ),
                "composition": dec.composition_loss(z, counts[idx]),
            }
            if dec.lattice_head is not None:
                terms["lattice"] = torch.nn.functional.mse_loss(dec.lattice_head(z), lattice_target[idx])
            if y is not None:
                head_mean, head_log_var = model.heads(z)
                terms["property"] = heads_nll(head_mean, head_log_var, y[idx])
            loss = sum(model.config.loss_weights.get(k, 1.0) * v for k, v in terms.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last = {k: float(v.detach()) for k, v in terms.items()}
    model.eval()
    return last


def _latent_means(model, graphs: list, batch_size: int = 256) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat(
            [model.encode_batch(collate(graphs[i : i + batch_size]))[0] for i in range(0, len(graphs), batch_size)]
        )


def _calibrate_heads(model, graphs, targets, val_idx) -> dict:
    """Scale each property's σ so that it is calibrated on the validation split (post-hoc variance
    scaling, as for property models): the heads, refit on frozen training latents, are otherwise
    overconfident, and UCB screening reads σ. Returns validation MAE, σ factor, coverage."""
    batch, y = _collate(graphs, targets, val_idx)
    model.target_scaler.std_factor.fill_(1.0)
    with torch.no_grad():
        preds = model.predict_properties(model.encode_batch(batch)[0])
    out = {}
    for i, name in enumerate(model.config.properties):
        known = torch.isfinite(y[:, i])
        mean, std, truth = (t[known].double().numpy() for t in (preds[name][0], preds[name][1], y[:, i]))
        factor = std_scale_factor(truth, mean, std) if known.sum() >= 2 else 1.0
        model.target_scaler.std_factor[i] = factor
        calibrated = regression_metrics(truth, mean, std * factor)
        out.update(
            {
                f"val_mae_{name}": calibrated["mae"],
                f"std_factor_{name}": factor,
                f"val_coverage_1sigma_{name}": calibrated.get("coverage_1sigma", float("nan")),
            }
        )
    return out


def start_from(model, path) -> str:
    """Copy a trained autoencoder's weights into ``model`` wherever name and shape agree; returns what
    was copied and what is new. Refused (one message) when the elements differ, or when a tensor of
    a module both networks have is missing or shaped differently (another architecture): only whole
    modules may be new (a head added to the decoder) or left behind (property heads of another recipe),
    and the latent prior, which training fits again at the end, may have another number of components."""
    base = load_autoencoder(path)
    if list(base.config.elements) != list(model.config.elements):
        raise ConfigError(
            f"init_from {path}: its elements {base.config.elements} differ from the recipe data's "
            f"{model.config.elements}"
        )
    source, target = base.state_dict(), model.state_dict()

    def module(key: str) -> str:
        return key.rsplit(".", 1)[0]

    base_modules, own_modules = {module(k) for k in source}, {module(k) for k in target}
    clash = [k for k in target if module(k) in base_modules and (k not in source or source[k].shape != target[k].shape)]
    refit = ("heads.", "target_scaler.", "prior_")  # recipe-specific heads, and the prior training ends by fitting
    clash = [k for k in clash if not k.startswith(refit)]
    if clash:
        shown = ", ".join(clash[:4])
        raise ConfigError(f"init_from {path}: another network ({shown} differ); set `model:` as it was trained")
    copied = {k: v for k, v in source.items() if k in target and v.shape == target[k].shape}
    model.load_state_dict({**target, **copied})
    new = sorted(m for m in own_modules - base_modules)
    left = sorted(m for m in base_modules - own_modules)
    return (
        f"started from {path}: {len(copied)} of {len(target)} tensors copied"
        + (f"; new: {', '.join(new)}" if new else "")
        + (f"; not carried over: {', '.join(left)}" if left else "")
    )


def train_autoencoder(config):
    """Train the autoencoder a recipe describes; returns ``(model, metrics)``.

    ``metrics`` is flat: sizes, epochs run, minutes, final train/validation loss terms, and for
    property heads the validation MAE of the latent heads. ``model.checkpoint_info`` holds the
    recipe, the metrics and the data fingerprint; the checkpoint goes to ``output`` (or
    ``<out_dir>/<name>.pt``) when one is named.
    """
    cfg = _recipe(config)
    seed = int(cfg.seed)
    torch.manual_seed(seed)
    random.seed(seed)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))

    data = load_recipe_data(cfg)
    structures, targets = data.structures, data.targets
    order = _shuffled(len(structures), cfg)
    elements = sorted({site.specie.Z for i in order for site in structures[i]})
    model_options = dict(cfg.model)
    model_options["decoder"] = {
        "max_atoms": min(max(len(structures[i]) for i in order) + 2, DEFAULT_DECODER_MAX_ATOMS),
        **(model_options.get("decoder") or {}),
    }
    ae_config = AutoencoderConfig(
        elements=elements, periodic=data.periodic, properties=list(cfg.properties), **model_options
    )
    model = build_autoencoder(ae_config)
    if cfg.init_from:
        print(start_from(model, cfg.init_from), flush=True)

    split = _split(data, cfg, order, model)
    graphs, val_idx, train_idx = split.graphs, split.val, split.train
    unlabelled = [name for p, name in enumerate(cfg.properties) if not np.isfinite(targets[train_idx, p]).any()]
    if unlabelled:
        raise InputError(
            f"property {', '.join(unlabelled)} has no numeric value among the {len(train_idx)} training "
            "structures: nothing to train its head on"
        )

    # statistics the model standardises with: lattice parameters, property labels
    train_batch, _ = _collate(graphs, targets, train_idx)
    if data.periodic:
        model.decoder.fit_lattice_scaler(train_batch[keys.CELL], train_batch[keys.NUM_NODES])
    if targets.shape[1]:
        model.target_scaler.fit(torch.as_tensor(targets[train_idx], dtype=torch.get_default_dtype()))

    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg.lr), weight_decay=float(cfg.weight_decay))
    epochs = int(cfg.epochs)
    steps_per_epoch = math.ceil(len(train_idx) / int(cfg.batch_size))
    base_lr = float(cfg.lr)
    generator = torch.Generator().manual_seed(seed)
    start = time.time()
    deadline = start + 60.0 * float(cfg.max_minutes)
    history, epoch, stopped_early, step = [], 0, False, 0
    for epoch in range(1, epochs + 1):
        model.train()
        shuffled = list(train_idx)
        random.Random(seed + epoch).shuffle(shuffled)
        sums, count = {}, 0
        for idx in _batches(shuffled, int(cfg.batch_size)):
            batch, y = _collate(graphs, targets, idx)
            terms = model.losses(batch, y, generator=generator)
            loss = model.total_loss(terms)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            step += 1
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(
                    base_lr, step, epochs * steps_per_epoch, time.time() - start, deadline - start
                )
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
            count += len(idx)
        train_terms = {k: v / count for k, v in sums.items()}
        history.append(train_terms)
        if cfg.log_every and epoch % int(cfg.log_every) == 0:
            shown = " ".join(f"{k}={v:.4f}" for k, v in train_terms.items())
            print(f"epoch {epoch}/{epochs} {time.time() - start:.0f}s {shown}", flush=True)
        if time.time() > deadline - 0.5 * (time.time() - start) / epoch and epoch < epochs:
            stopped_early = True
            break
    model.eval()
    prior = model.fit_latent_prior(_latent_means(model, [graphs[i] for i in train_idx]), cfg.prior_components, seed)
    if int(cfg.head_epochs):
        head_terms = refine_heads(
            model,
            [graphs[i] for i in train_idx],
            targets[train_idx],
            int(cfg.head_epochs),
            float(cfg.head_lr),
            seed=seed,
        )
        print("refined latent heads: " + " ".join(f"{k}={v:.4f}" for k, v in head_terms.items()), flush=True)

    metrics = {
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "epochs_run": epoch,
        "epochs_planned": epochs,
        "stopped_early_for_time": int(stopped_early),
        "minutes": (time.time() - start) / 60.0,
        **prior,
    }
    metrics.update({f"train_{k}": v for k, v in history[-1].items()})
    if val_idx:
        metrics.update({f"val_{k}": v for k, v in _evaluate(model, graphs, targets, val_idx, 256, generator).items()})
        if targets.shape[1]:
            metrics.update(_calibrate_heads(model, graphs, targets, val_idx))
    metrics["skipped_structures"] = len(split.skipped)
    fingerprint = _fingerprint(cfg, data, split)
    model.model_name = str(cfg.name or (Path(cfg.output).stem if cfg.output else "autoencoder"))
    output = cfg.output or (str(Path(cfg.out_dir) / f"{model.model_name}.pt") if cfg.out_dir else None)
    recorded = {**cfg.to_dict(), "name": model.model_name, "output": output}
    model.checkpoint_info = {"config": recorded, "metrics": metrics, "data_fingerprint": fingerprint}
    if output:
        save_autoencoder(model, output, config=recorded, metrics=metrics, data_fingerprint=fingerprint)
    return model, metrics
