"""Training and evaluating an atom-completion model (:mod:`motif_screen.model.completion`).

Training follows the tensor field network paper's protocol (Thomas et al. 2018): each epoch
removes one random atom from every training structure and the model learns to put it back;
evaluation makes one hole per atom (the tensor field network paper's test) or one random hole
per structure.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.graphs import collate, describe, remove_atom
from motif_screen.model.completion import ELEMENT_LOGITS, POSITION, CompletionModel, build_completion_model
from motif_screen.training.config import CompletionConfig

__all__ = ["evaluate_completion", "train_completion"]


def _check_molecules(molecules) -> None:
    if len(molecules) < 2:
        raise InputError("train_completion needs at least 2 structures (some are held out for validation)")
    for i, molecule in enumerate(molecules):
        if len(molecule) < 3:
            raise InputError(
                f"training structure {i} ({describe(molecule)}) has fewer than 3 atoms: with one removed, "
                "fewer than 2 remain to vote"
            )


def _holes(graphs, rng: np.random.Generator):
    """One random hole per graph: (holey graphs, removed element, removed position)."""
    holey, targets, positions = [], [], []
    for graph in graphs:
        index = int(rng.integers(int(graph[keys.NUM_NODES][0])))
        holey.append(remove_atom(graph, index))
        targets.append(int(graph[keys.ATOMIC_NUMBERS][index]))
        positions.append(graph[keys.POSITIONS][index])
    return holey, torch.tensor(targets), torch.stack(positions)


def _loss(out, element_index, position, position_weight):
    ce = nn.functional.cross_entropy(out[ELEMENT_LOGITS], element_index)
    sq = ((out[POSITION] - position) ** 2).sum(dim=1).mean()
    return ce + position_weight * sq, ce, sq


def _element_index(model: CompletionModel, atomic_numbers: torch.Tensor) -> torch.Tensor:
    lookup = {z: i for i, z in enumerate(model.elements)}
    missing = sorted({int(z) for z in atomic_numbers} - set(lookup))
    if missing:
        raise InputError(
            f"removed atoms with atomic number(s) {missing} are not among the elements the "
            f"model can predict {list(model.elements)}"
        )
    return torch.tensor([lookup[int(z)] for z in atomic_numbers], dtype=torch.long)


def _budget_used(config: CompletionConfig, start: float) -> float:
    if config.max_minutes is None:
        return 0.0
    return (time.perf_counter() - start) / (60.0 * config.max_minutes)


def _set_lr(optimizer, config: CompletionConfig, progress: float) -> None:
    """Cosine decay from lr to lr_min over the run — over the epochs or the time budget, whichever
    ends first, so a time-limited run still finishes with a small learning rate."""
    progress = min(max(progress, 0.0), 1.0)
    lr = config.lr_min + 0.5 * (config.lr - config.lr_min) * (1.0 + math.cos(math.pi * progress))
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_completion(molecules, config: CompletionConfig | None = None, validation=None):
    """Train an atom-completion model; returns ``(model, metrics)`` with the best-validation weights.

    Each epoch removes one random atom from every training structure (a fresh hole each time, as
    that protocol does). ``validation`` (structures) defaults to ``val_fraction`` of
    ``molecules``; its holes are fixed by the seed so its loss is comparable across epochs.
    Early stopping on the validation loss, a cosine learning-rate schedule, an optional wall-clock
    budget, and a NaN guard (stops with a message, keeping the last good weights).
    """
    config = config or CompletionConfig()
    _check_molecules(molecules)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)

    molecules = list(molecules)
    if validation is None:
        order = rng.permutation(len(molecules))
        n_val = max(1, int(round(config.val_fraction * len(molecules))))
        validation = [molecules[i] for i in order[:n_val]]
        molecules = [molecules[i] for i in order[n_val:]]
    elements = config.elements or sorted({site.specie.Z for m in molecules for site in m})
    model = build_completion_model(
        elements, config.preset, config.hidden_scalars, config.hidden_vectors, **config.encoder_overrides
    )
    train_graphs = [model.graph(m, name=f"training structure {i}") for i, m in enumerate(molecules)]
    val_graphs = [model.graph(m, name=f"validation structure {i}") for i, m in enumerate(validation)]
    val_holey, val_z, val_pos = _holes(val_graphs, np.random.default_rng(config.seed + 1))
    val_batch, val_target = collate(val_holey), _element_index(model, val_z)

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * math.ceil(len(train_graphs) / config.batch_size)
    step = 0
    model.eval()
    with torch.no_grad():
        initial_val_loss = float(_loss(model(val_batch), val_target, val_pos, config.position_weight)[0])
    best: dict[str, Any] = {"val_loss": math.inf, "epoch": -1, "state": copy.deepcopy(model.state_dict())}
    history, stop_reason, start, cpu_start = [], "epochs", time.perf_counter(), time.process_time()
    bar = tqdm(range(config.epochs), desc="completion", disable=not config.progress, leave=False)
    for epoch in bar:
        model.train()
        order = rng.permutation(len(train_graphs))
        epoch_loss, nan = 0.0, False
        for first in range(0, len(order), config.batch_size):
            chunk = [train_graphs[i] for i in order[first : first + config.batch_size]]
            holey, z, pos = _holes(chunk, rng)
            loss, _, _ = _loss(model(collate(holey)), _element_index(model, z), pos, config.position_weight)
            if not torch.isfinite(loss):
                nan = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            _set_lr(optimizer, config, max(step / total_steps, _budget_used(config, start)))
            epoch_loss += float(loss.detach()) * len(chunk)
        if nan:
            stop_reason = f"non-finite loss in epoch {epoch}; kept the weights of epoch {best['epoch']}"
            break
        model.eval()
        with torch.no_grad():
            val_out = model(val_batch)
            val_loss, _, _ = _loss(val_out, val_target, val_pos, config.position_weight)
            val_acc = float((val_out[ELEMENT_LOGITS].argmax(1) == val_target).double().mean())
            val_err = float(torch.linalg.norm(val_out[POSITION] - val_pos, dim=1).mean())
        history.append(
            {
                "epoch": epoch,
                "train_loss": epoch_loss / len(train_graphs),
                "val_loss": float(val_loss),
                "val_element_accuracy": val_acc,
                "val_position_error": val_err,
            }
        )
        bar.set_postfix(
            loss=f"{history[-1]['train_loss']:.3f}",
            val=f"{float(val_loss):.3f}",
            acc=f"{val_acc:.3f}",
            err=f"{val_err:.2f}",
        )
        if float(val_loss) < best["val_loss"]:
            best = {"val_loss": float(val_loss), "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        elif epoch - best["epoch"] >= config.patience:
            stop_reason = f"early stop: no better validation loss for {config.patience} epochs"
            break
        if config.max_minutes is not None and time.perf_counter() - start > 60 * config.max_minutes:
            stop_reason = f"time budget of {config.max_minutes} min spent"
            break
    bar.close()
    model.load_state_dict(best["state"])
    model.eval()
    metrics = {
        "train_seconds": time.perf_counter() - start,
        "train_cpu_seconds": time.process_time() - cpu_start,  # this process only: contention-independent
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "initial_val_loss": initial_val_loss,
        "best_val_loss": best["val_loss"],
        "stop_reason": stop_reason,
        "history": history,
        "config": config.to_dict(),
        "num_train": len(train_graphs),
        "num_validation": len(val_graphs),
    }
    return model, metrics


def evaluate_completion(
    model: CompletionModel,
    molecules,
    remove: str = "all",
    seed: int = 0,
    batch_size: int = 256,
    tolerance: float = 0.5,
    progress: bool = False,
) -> dict:
    """Accuracy of filling holes in ``molecules``.

    ``remove="all"`` makes one hole per atom of every structure (the TFN paper's test protocol);
    ``"random"`` one random hole per structure. Returns element accuracy, the TFN criterion
    (right element AND within ``tolerance`` Å), mean / median position error (Å), the number of
    holes, and per-element counts and accuracies.
    """
    if remove not in ("all", "random"):
        raise InputError(f"remove must be 'all' or 'random', not {remove!r}")
    rng = np.random.default_rng(seed)
    jobs: list[tuple[dict[str, torch.Tensor], int]] = []  # (graph, index)
    for i, molecule in enumerate(molecules):
        if len(molecule) < 3:
            raise InputError(f"test structure {i} has fewer than 3 atoms; nothing meaningful to complete")
        graph = model.graph(molecule, name=f"test structure {i}")
        n = len(molecule)
        indices = range(n) if remove == "all" else [int(rng.integers(n))]
        jobs.extend((graph, k) for k in indices)
    true_numbers: list[int] = []
    predicted_numbers: list[int] = []
    error_chunks: list[torch.Tensor] = []
    model.eval()
    with torch.no_grad():
        for first in tqdm(range(0, len(jobs), batch_size), disable=not progress, leave=False, desc="evaluate"):
            chunk = jobs[first : first + batch_size]
            out = model(collate([remove_atom(g, k) for g, k in chunk]))
            truth = torch.stack([g[keys.POSITIONS][k] for g, k in chunk])
            true_numbers.extend(int(g[keys.ATOMIC_NUMBERS][k]) for g, k in chunk)
            predicted_numbers.extend(model.elements[int(j)] for j in out[ELEMENT_LOGITS].argmax(1))
            error_chunks.append(torch.linalg.norm(out[POSITION] - truth, dim=1))
    true_z, pred_z = np.array(true_numbers), np.array(predicted_numbers)
    errors = torch.cat(error_chunks).double().numpy()
    right = true_z == pred_z
    hit = right & (errors < tolerance)
    metrics = {
        "holes": int(len(true_z)),
        "element_accuracy": float(right.mean()),
        "accuracy": float(hit.mean()),
        "position_error_mean": float(errors.mean()),
        "position_error_median": float(np.median(errors)),
        "within_tolerance": float((errors < tolerance).mean()),
    }
    for z in sorted(set(true_z.tolist())):
        mask = true_z == z
        metrics[f"holes_Z{z}"] = int(mask.sum())
        metrics[f"accuracy_Z{z}"] = float(hit[mask].mean())
    return metrics
