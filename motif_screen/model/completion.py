"""Atom completion, the seed's experiment: put back the atom that was removed from a structure.

Every remaining atom votes (tensor field networks, Thomas et al. 2018, "missing point"): it emits
element scores (``V x 0e``), a confidence (``0e``) and a displacement (``1o``) from itself to where
it thinks the missing atom is. With ``w = softmax(confidence)`` over the atoms of one structure,

    element scores  = Σ_i w_i · scores_i
    position        = Σ_i w_i · (r_i + d_i)

Because ``w`` is invariant and sums to one and ``d_i`` is a ``1o`` vector, the predicted position
rotates and translates with the structure and the element does not change — by construction, not
by training. The per-atom features come from the shared :class:`motif_screen.model.encoder.Encoder`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from e3nn import o3
from torch import nn

from motif_screen import keys
from motif_screen.errors import InputError, ModelError
from motif_screen.graphs import remove_atom

# Output fields of CompletionModel.forward (local to this head, so not in motif_screen.keys).
ELEMENT_LOGITS = "element_logits"  # (B, V) vote-weighted element scores of the missing atom
POSITION = "position"  # (B, 3) voted position of the missing atom, Å
ATOM_WEIGHTS = "atom_weights"  # (N,) softmax(confidence) within each structure
ATOM_VOTES = "atom_votes"  # (N, 3) r_i + d_i, each atom's guess of the position

__all__ = [
    "CompletionConfig",
    "CompletionHead",
    "CompletionModel",
    "build_completion_model",
    "complete",
    "evaluate_completion",
    "train_completion",
    "vote",
]


class CompletionHead(nn.Module):
    """Per-atom features -> (element scores, confidence, displacement), one gated layer deep.

    irreps_in: the encoder's node features (must contain ``1o`` channels, else no displacement
    could be expressed). irreps_out: ``V x 0e + 1 x 0e + 1 x 1o`` (scores, confidence, displacement).
    """

    def __init__(self, irreps_in, num_elements: int, hidden_scalars: int = 32, hidden_vectors: int = 8):
        super().__init__()
        from motif_screen.model.blocks import gate_for

        self.irreps_in = o3.Irreps(irreps_in)
        if o3.Irrep("1o") not in [ir for _, ir in self.irreps_in]:
            raise ModelError(
                f"the completion head needs 1o (vector) node features to place an atom; got {self.irreps_in}"
            )
        self.num_elements = int(num_elements)
        self.irreps_out = o3.Irreps(f"{self.num_elements}x0e + 1x0e + 1x1o")
        self.gate = gate_for(o3.Irreps(f"{hidden_scalars}x0e + {hidden_vectors}x1o"))
        self.linear_in = o3.Linear(self.irreps_in, self.gate.irreps_in)
        self.linear_out = o3.Linear(self.gate.irreps_out, self.irreps_out)

    def forward(self, node_features: torch.Tensor) -> torch.Tensor:
        return self.linear_out(self.gate(self.linear_in(node_features)))

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(element scores (N, V), confidence (N,), displacement (N, 3) in x, y, z)."""
        v = self.num_elements
        return out[:, :v], out[:, v], out[:, v + 1 : v + 4]  # e3nn's 1o basis is (x, y, z): D(R) = R


def vote(
    scores: torch.Tensor,
    confidence: torch.Tensor,
    displacement: torch.Tensor,
    positions: torch.Tensor,
    batch: torch.Tensor,
    num_graphs: int,
) -> dict[str, torch.Tensor]:
    """Confidence-weighted vote of every atom of each structure (a softmax within each structure)."""
    top = torch.full((num_graphs,), -math.inf, dtype=confidence.dtype, device=confidence.device)
    top = top.scatter_reduce(0, batch, confidence.detach(), reduce="amax", include_self=True)
    expo = torch.exp(confidence - top[batch])
    total = torch.zeros(num_graphs, dtype=expo.dtype, device=expo.device).index_add(0, batch, expo)
    weights = expo / total[batch]
    votes = positions + displacement
    position = torch.zeros(num_graphs, 3, dtype=votes.dtype, device=votes.device).index_add(
        0, batch, weights.unsqueeze(1) * votes
    )
    logits = torch.zeros(num_graphs, scores.shape[1], dtype=scores.dtype, device=scores.device).index_add(
        0, batch, weights.unsqueeze(1) * scores
    )
    return {ELEMENT_LOGITS: logits, POSITION: position, ATOM_WEIGHTS: weights, ATOM_VOTES: votes}


class CompletionModel(nn.Module):
    """Encoder + completion head + vote. ``elements``: atomic numbers the missing atom can be.

    Checkpoints with :func:`motif_screen.model.checkpoint.save_checkpoint` (kind ``"completion"``).
    """

    KIND = "completion"

    def __init__(self, encoder: nn.Module, elements, hidden_scalars: int = 32, hidden_vectors: int = 8):
        super().__init__()
        self.encoder = encoder
        self.elements = tuple(int(z) for z in elements)
        self.hidden = (int(hidden_scalars), int(hidden_vectors))
        self.head = CompletionHead(
            encoder.irreps_out[keys.NODE_FEATURES], len(self.elements), hidden_scalars, hidden_vectors
        )
        self.cutoff = float(encoder.cutoff)
        self.irreps_in = {keys.POSITIONS: o3.Irreps("1o"), keys.CELL: o3.Irreps("3x1o")}
        self.irreps_out = {ELEMENT_LOGITS: o3.Irreps(f"{len(self.elements)}x0e"), POSITION: o3.Irreps("1o")}

    @property
    def model_config(self) -> dict:
        """Everything :meth:`from_config` needs to rebuild this architecture."""
        return {"encoder": dict(self.encoder.config), "elements": list(self.elements),
                "hidden_scalars": self.hidden[0], "hidden_vectors": self.hidden[1]}

    @classmethod
    def from_config(cls, config: dict) -> "CompletionModel":
        from motif_screen.model.encoder import Encoder

        return cls(Encoder(**config["encoder"]), config["elements"], config["hidden_scalars"], config["hidden_vectors"])

    @property
    def vocabulary(self) -> tuple[int, ...]:
        """Elements the remaining atoms may be (the encoder's vocabulary)."""
        return tuple(self.encoder.vocabulary)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features = self.encoder(batch)[keys.NODE_FEATURES]
        scores, confidence, displacement = self.head.split(self.head(features))
        num_graphs = int(batch[keys.NUM_NODES].shape[0])
        return vote(scores, confidence, displacement, batch[keys.POSITIONS], batch[keys.BATCH], num_graphs)


def build_completion_model(elements, preset: str = "S", hidden_scalars: int = 32, hidden_vectors: int = 8,
                           **encoder_overrides) -> CompletionModel:
    """A fresh completion model whose encoder knows exactly ``elements`` (e.g. H, C, N, O, F)."""
    from motif_screen.model.encoder import build_encoder

    elements = sorted({int(z) for z in elements})
    encoder_overrides.setdefault("vocabulary", elements)
    encoder = build_encoder(preset, **encoder_overrides)
    return CompletionModel(encoder, elements, hidden_scalars, hidden_vectors)


def _graph(structure, model: CompletionModel, name: str | None = None) -> dict[str, torch.Tensor]:
    from motif_screen.graphs import to_graph

    return to_graph(structure, model.cutoff, vocabulary=model.vocabulary, name=name,
                    dtype=next(model.parameters()).dtype)


def complete(model: CompletionModel, structure_with_hole) -> tuple[str, np.ndarray]:
    """(element symbol, Cartesian position in Å) of the atom missing from ``structure_with_hole``.

    Needs at least two atoms: around a lone atom every direction is equivalent, so any equivariant
    model must answer "on top of it" — a meaningless prediction we refuse instead.
    """
    from motif_screen.graphs import collate, describe
    from pymatgen.core.periodic_table import Element

    if len(structure_with_hole) < 2:
        raise InputError(
            f"{describe(structure_with_hole)}: completing a structure needs at least 2 atoms "
            "(around a single atom the missing atom's direction is undefined)"
        )
    graph = _graph(structure_with_hole, model)
    model.eval()
    with torch.no_grad():
        out = model(collate([graph]))
    element = model.elements[int(out[ELEMENT_LOGITS][0].argmax())]
    return Element.from_Z(element).symbol, out[POSITION][0].double().numpy()


# --- training --------------------------------------------------------------------------------------
@dataclass
class CompletionConfig:
    """Everything that decides a completion training run (saved next to its metrics)."""

    preset: str = "S"
    encoder_overrides: dict = field(default_factory=dict)
    hidden_scalars: int = 32
    hidden_vectors: int = 8
    elements: tuple[int, ...] | None = None  # default: the elements of the training molecules
    epochs: int = 200
    batch_size: int = 32  # on CPU ~2x the structures/s of batch 16 (measured here)
    lr: float = 3e-3
    lr_min: float = 1e-4  # cosine decay to this over the epochs or max_minutes, whichever ends first
    weight_decay: float = 0.0
    position_weight: float = 1.0  # loss = cross-entropy + position_weight * |Δr|² (Å²)
    val_fraction: float = 0.1
    patience: int = 40  # epochs without a better validation loss before stopping
    max_minutes: float | None = None  # wall-clock budget; stop (keeping the best model) when spent
    seed: int = 0
    num_threads: int | None = None
    progress: bool = True


def _check_molecules(molecules) -> None:
    from motif_screen.graphs import describe

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
        raise InputError(f"removed atoms with atomic number(s) {missing} are not among the elements the "
                         f"model can predict {list(model.elements)}")
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
    the seed's protocol does). ``validation`` (structures) defaults to ``val_fraction`` of
    ``molecules``; its holes are fixed by the seed so its loss is comparable across epochs.
    Early stopping on the validation loss, a cosine learning-rate schedule, an optional wall-clock
    budget, and a NaN guard (stops with a message, keeping the last good weights).
    """
    from motif_screen.graphs import collate
    from tqdm.auto import tqdm

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
    model = build_completion_model(elements, config.preset, config.hidden_scalars, config.hidden_vectors,
                                   **config.encoder_overrides)
    train_graphs = [_graph(m, model, name=f"training structure {i}") for i, m in enumerate(molecules)]
    val_graphs = [_graph(m, model, name=f"validation structure {i}") for i, m in enumerate(validation)]
    val_holey, val_z, val_pos = _holes(val_graphs, np.random.default_rng(config.seed + 1))
    val_batch, val_target = collate(val_holey), _element_index(model, val_z)

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * math.ceil(len(train_graphs) / config.batch_size)
    step = 0
    model.eval()
    with torch.no_grad():
        initial_val_loss = float(_loss(model(val_batch), val_target, val_pos, config.position_weight)[0])
    best = {"val_loss": math.inf, "epoch": -1, "state": copy.deepcopy(model.state_dict())}
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
        history.append({"epoch": epoch, "train_loss": epoch_loss / len(train_graphs), "val_loss": float(val_loss),
                        "val_element_accuracy": val_acc, "val_position_error": val_err})
        bar.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", val=f"{float(val_loss):.3f}",
                        acc=f"{val_acc:.3f}", err=f"{val_err:.2f}")
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
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "num_train": len(train_graphs),
        "num_validation": len(val_graphs),
    }
    return model, metrics


# --- evaluation ------------------------------------------------------------------------------------
def evaluate_completion(model: CompletionModel, molecules, remove: str = "all", seed: int = 0,
                        batch_size: int = 256, tolerance: float = 0.5, progress: bool = False) -> dict:
    """Accuracy of filling holes in ``molecules``.

    ``remove="all"`` makes one hole per atom of every structure (the TFN paper's test protocol);
    ``"random"`` one random hole per structure. Returns element accuracy, the TFN criterion
    (right element AND within ``tolerance`` Å), mean / median position error (Å), the number of
    holes, and per-element counts and accuracies.
    """
    from motif_screen.graphs import collate
    from tqdm.auto import tqdm

    if remove not in ("all", "random"):
        raise InputError(f"remove must be 'all' or 'random', not {remove!r}")
    rng = np.random.default_rng(seed)
    jobs = []  # (graph, index)
    for i, molecule in enumerate(molecules):
        if len(molecule) < 3:
            raise InputError(f"test structure {i} has fewer than 3 atoms; nothing meaningful to complete")
        graph = _graph(molecule, model, name=f"test structure {i}")
        n = len(molecule)
        indices = range(n) if remove == "all" else [int(rng.integers(n))]
        jobs.extend((graph, k) for k in indices)
    true_z, pred_z, errors = [], [], []
    model.eval()
    with torch.no_grad():
        for first in tqdm(range(0, len(jobs), batch_size), disable=not progress, leave=False, desc="evaluate"):
            chunk = jobs[first : first + batch_size]
            out = model(collate([remove_atom(g, k) for g, k in chunk]))
            truth = torch.stack([g[keys.POSITIONS][k] for g, k in chunk])
            true_z.extend(int(g[keys.ATOMIC_NUMBERS][k]) for g, k in chunk)
            pred_z.extend(model.elements[int(j)] for j in out[ELEMENT_LOGITS].argmax(1))
            errors.append(torch.linalg.norm(out[POSITION] - truth, dim=1))
    true_z, pred_z = np.array(true_z), np.array(pred_z)
    errors = torch.cat(errors).double().numpy()
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
