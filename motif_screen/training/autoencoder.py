"""Training the structure autoencoder end to end: ``train_autoencoder(config) -> (model, metrics)``.

``config`` is the dict of an ``autoencoder`` recipe (YAML, see
``motif_screen/pretrained/perov5_autoencoder.yaml``)::

    task: autoencoder
    data: ../shared/data/perov_5/val.csv   # a CSV with a `cif` column, or "qm9"
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

Graphs are built once (CIF parsing is the slow part), then every epoch reshuffles them.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from motif_screen import keys
from motif_screen.errors import ConfigError, InputError

__all__ = ["train_autoencoder", "refit_latent_prior", "refine_heads", "load_structure_csv", "DEFAULTS"]

DEFAULTS = {
    "data": "../shared/data/perov_5/val.csv",
    "properties": {},
    "limit": None,
    "val_fraction": 0.1,
    "epochs": 100,
    "max_minutes": 30.0,
    "batch_size": 64,
    "lr": 2e-3,
    "weight_decay": 0.0,
    "seed": 0,
    "threads": None,
    "model": {},
    "output": None,
    "out_dir": None,  # set by `motif-screen train --out`: the checkpoint goes to <out_dir>/<name>.pt
    "qm9": {"n": 5000, "max_atoms": 29},
    "log_every": 1,
    "head_epochs": 0,  # then refit the latent -> (size, composition, lattice, property) MLPs on frozen latents
    "head_lr": 3e-3,
    "prior_components": "auto",  # Gaussians in the latent prior: a number, or "auto" (held-out likelihood)
}


def load_structure_csv(path, properties: dict | None = None, limit: int | None = None):
    """(structures, ids, targets (N, P) with NaN for missing) from a CSV with a ``cif`` column."""
    import pandas as pd
    from pymatgen.core import Structure

    path = Path(path)
    if not path.is_file():
        raise InputError(f"training data {path} does not exist")
    frame = pd.read_csv(path)
    if "cif" not in frame.columns:
        raise InputError(f"{path} has no 'cif' column; give a CSV of CIF strings (perov-5 format)")
    properties = properties or {}
    missing = [col for col in properties.values() if col not in frame.columns]
    if missing:
        raise InputError(f"{path} has no column(s) {', '.join(missing)} named in 'properties'")
    if limit:
        frame = frame.iloc[: int(limit)]
    structures = [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]  # ~250 CIFs/s
    ids = [str(x) for x in frame["material_id"]] if "material_id" in frame.columns else [str(i) for i in frame.index]
    targets = np.stack([frame[col].to_numpy(dtype=float) for col in properties.values()], axis=1) if properties else np.zeros((len(frame), 0))
    return structures, ids, targets


def _load_data(cfg: dict):
    if str(cfg["data"]).lower() == "qm9":
        from motif_screen.training.qm9 import load_qm9

        options = dict(cfg.get("qm9") or {})
        molecules, _ = load_qm9(n=options.get("n", 5000), max_atoms=options.get("max_atoms"), seed=cfg["seed"], targets=())
        ids = [str(m.properties.get("qm9_index")) for m in molecules]
        if cfg["properties"]:
            raise ConfigError("property heads on QM9 are not wired into the autoencoder recipe; leave 'properties' empty")
        return molecules, ids, np.zeros((len(molecules), 0)), False
    structures, ids, targets = load_structure_csv(cfg["data"], cfg["properties"], None)
    return structures, ids, targets, True


def _split(n_structures: int, cfg: dict) -> tuple[list[int], list[int], list[int]]:
    """(used, validation, training) indices: a seeded shuffle, cut to ``limit``, validation first."""
    order = list(range(n_structures))
    random.Random(int(cfg["seed"])).shuffle(order)
    if cfg["limit"]:
        order = order[: int(cfg["limit"])]
    if len(order) < 2:
        raise InputError("the autoencoder needs at least 2 training structures")
    n_val = max(1, int(round(len(order) * float(cfg["val_fraction"])))) if cfg["val_fraction"] else 0
    return order, order[:n_val], order[n_val:]


def refit_latent_prior(config: dict):
    """Refit only the latent prior of a recipe's trained checkpoint (its ``output``), on the same
    training split the recipe used, and write the checkpoint back; returns ``(model, summary)``.

    Minutes instead of the training run, for a prior setting (``prior_components``) changed after
    training; the network's weights are untouched, so encodings and decodings of given latents stay
    the same and only prior samples change."""
    from motif_screen.graphs import to_graph
    from motif_screen.model.checkpoint import load_autoencoder, save_autoencoder

    cfg = {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
    if not cfg["output"] or not Path(cfg["output"]).is_file():
        raise ConfigError(f"refitting the prior needs the recipe's trained checkpoint; `output` is {cfg['output']!r}")
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    model = load_autoencoder(cfg["output"])
    structures, ids, _, _ = _load_data(cfg)
    _, _, train_idx = _split(len(structures), cfg)
    graphs = [to_graph(structures[i], model.cutoff, vocabulary=model.config.elements, name=f"structure {ids[i]}") for i in train_idx]
    summary = model.fit_latent_prior(_latent_means(model, graphs), cfg["prior_components"], int(cfg["seed"]))
    info = getattr(model, "checkpoint_info", None) or {}
    metrics = {**(info.get("metrics") or {}), **summary}
    save_autoencoder(model, cfg["output"], config={**(info.get("config") or {}), "prior_components": cfg["prior_components"]},
                     metrics=metrics)
    return model, summary


def _batches(indices: list[int], batch_size: int):
    for start in range(0, len(indices), batch_size):
        yield indices[start : start + batch_size]


def _collate(graphs, targets, idx):
    from motif_screen.graphs import collate

    batch = collate([graphs[i] for i in idx])
    y = torch.as_tensor(targets[idx], dtype=torch.get_default_dtype()) if targets.shape[1] else None
    return batch, y


def _evaluate(model, graphs, targets, indices, batch_size, generator) -> dict:
    model.eval()
    sums, count = {}, 0
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


def refine_heads(model, graphs: list, targets=None, epochs: int = 200, lr: float = 3e-3, batch_size: int = 256, seed: int = 0) -> dict:
    """Refit the small MLPs that read the latent (number of atoms, composition, lattice, property
    heads) with the encoder and the flow frozen.

    Why: in end-to-end training these heads learn at the pace of the expensive flow network
    (a few thousand steps on CPU), which is too few for a 50-way composition softmax. On cached
    latent means each epoch costs milliseconds, so they converge in seconds. Returns final losses.
    """
    from motif_screen.graphs import collate

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
    for epoch in range(int(epochs)):
        order = torch.randperm(len(latents), generator=rng)
        for start in range(0, len(order), 128):
            idx = order[start : start + 128]
            z = latents[idx]
            terms = {
                "num_atoms": torch.nn.functional.cross_entropy(dec.num_atoms_head(z), num_nodes[idx].clamp(max=dec.config.max_atoms)),
                "composition": dec.composition_loss(z, counts[idx]),
            }
            if dec.lattice_head is not None:
                terms["lattice"] = torch.nn.functional.mse_loss(dec.lattice_head(z), lattice_target[idx])
            if y is not None:
                mu, log_var = model.heads(z)
                target = y[idx][None].expand_as(mu)
                known = torch.isfinite(target)
                nll = 0.5 * (log_var + (mu - torch.nan_to_num(target)) ** 2 / log_var.exp())
                terms["property"] = nll[known].mean()
            loss = sum(model.config.loss_weights.get(k, 1.0) * v for k, v in terms.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last = {k: float(v.detach()) for k, v in terms.items()}
    model.eval()
    return last


def _latent_means(model, graphs: list, batch_size: int = 256) -> torch.Tensor:
    from motif_screen.graphs import collate

    with torch.no_grad():
        return torch.cat([model.encode_batch(collate(graphs[i : i + batch_size]))[0] for i in range(0, len(graphs), batch_size)])


def _calibrate_heads(model, graphs, targets, val_idx) -> dict:
    """Scale each property's σ so that it is calibrated on the validation split (the encoder
    issue's post-hoc variance scaling): the heads, refit on frozen training latents, are
    otherwise overconfident, and UCB screening reads σ. Returns validation MAE, σ factor, coverage."""
    from motif_screen.training.metrics import regression_metrics, std_scale_factor

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
        out.update({f"val_mae_{name}": calibrated["mae"], f"std_factor_{name}": factor,
                    f"val_coverage_1sigma_{name}": calibrated.get("coverage_1sigma", float("nan"))})
    return out


def train_autoencoder(config: dict):
    """Train (or fine-tune) the autoencoder described by ``config``; returns ``(model, metrics)``.

    ``metrics`` is flat: sizes, epochs run, minutes, final train/validation loss terms, and for
    property heads the validation MAE of the latent heads.
    """
    from motif_screen.graphs import to_graph
    from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
    from motif_screen.model.checkpoint import save_autoencoder

    unknown = sorted(set(config) - set(DEFAULTS) - {"task", "name"})
    if unknown:
        raise ConfigError(f"unknown autoencoder recipe key(s): {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}")
    cfg = {**DEFAULTS, **{k: v for k, v in config.items() if v is not None or k in ("limit",)}}
    seed = int(cfg["seed"])
    torch.manual_seed(seed)
    random.seed(seed)
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))

    structures, ids, targets, periodic = _load_data(cfg)
    order, val_idx, train_idx = _split(len(structures), cfg)
    elements = sorted({site.specie.Z for i in order for site in structures[i]})
    model_options = dict(cfg["model"])
    model_options.setdefault("decoder", {})
    model_options["decoder"].setdefault("max_atoms", max(len(structures[i]) for i in order) + 2)
    ae_config = AutoencoderConfig(elements=elements, periodic=periodic, properties=list(cfg["properties"]), **model_options)
    model = build_autoencoder(ae_config)

    graphs = {i: to_graph(structures[i], model.cutoff, vocabulary=elements, name=f"structure {ids[i]}") for i in order}

    # statistics the model standardises with: lattice parameters, property labels
    train_batch, _ = _collate(graphs, targets, train_idx)
    if periodic:
        model.decoder.fit_lattice_scaler(train_batch[keys.CELL], train_batch[keys.NUM_NODES])
    if targets.shape[1]:
        model.target_scaler.fit(torch.as_tensor(targets[train_idx], dtype=torch.get_default_dtype()))

    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    epochs = int(cfg["epochs"])
    steps_per_epoch = math.ceil(len(train_idx) / int(cfg["batch_size"]))
    base_lr = float(cfg["lr"])
    generator = torch.Generator().manual_seed(seed)
    start = time.time()
    deadline = start + 60.0 * float(cfg["max_minutes"])
    history, epoch, stopped_early, step = [], 0, False, 0
    for epoch in range(1, epochs + 1):
        model.train()
        shuffled = list(train_idx)
        random.Random(seed + epoch).shuffle(shuffled)
        sums, count = {}, 0
        for idx in _batches(shuffled, int(cfg["batch_size"])):
            batch, y = _collate(graphs, targets, idx)
            terms = model.losses(batch, y, generator=generator)
            loss = model.total_loss(terms)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            step += 1
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(base_lr, step, epochs * steps_per_epoch, time.time() - start, deadline - start)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
            count += len(idx)
        train_terms = {k: v / count for k, v in sums.items()}
        history.append(train_terms)
        if cfg["log_every"] and epoch % int(cfg["log_every"]) == 0:
            shown = " ".join(f"{k}={v:.4f}" for k, v in train_terms.items())
            print(f"epoch {epoch}/{epochs} {time.time() - start:.0f}s {shown}", flush=True)
        if time.time() > deadline - 0.5 * (time.time() - start) / epoch and epoch < epochs:
            stopped_early = True
            break
    model.eval()
    prior = model.fit_latent_prior(_latent_means(model, [graphs[i] for i in train_idx]), cfg["prior_components"], seed)
    if int(cfg["head_epochs"]):
        head_terms = refine_heads(model, [graphs[i] for i in train_idx], targets[train_idx], int(cfg["head_epochs"]),
                                  float(cfg["head_lr"]), seed=seed)
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
    model.model_name = str(config.get("name") or (Path(cfg["output"]).stem if cfg["output"] else "autoencoder"))
    if not cfg["output"] and cfg["out_dir"]:
        cfg["output"] = str(Path(cfg["out_dir"]) / f"{model.model_name}.pt")
    if cfg["output"]:
        output = Path(cfg["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        save_autoencoder(model, output, config=dict(cfg), metrics=metrics)
    return model, metrics
