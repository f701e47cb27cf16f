"""The eight 3D Tetris shapes of tensor field networks (Thomas et al. 2018, Fig. 2) as Molecules.

A classifier (:mod:`motif_screen.model.tetris`) trained on these shapes in ONE orientation and
tested on randomly rotated copies is the simplest demonstration that a network is
rotation-equivariant: a plain network fails, an equivariant one is perfect by construction. Two
of the shapes are mirror images of each other, so a network that is equivariant under inversion
(O(3), e3nn's parity) can only tell them apart through a pseudoscalar (``0o``) feature — see
``CHIRAL_PAIR``.
"""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Molecule

from motif_screen.graphs import collate, to_graph
from motif_screen.model.tetris import build_tetris_classifier

# Unit-cube coordinates, four blocks each; names as in the TFN paper / e3nn's tetris example.
TETRIS_SHAPES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "chiral_1": ((0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0)),
    "chiral_2": ((0, 0, 0), (0, 0, 1), (1, 0, 0), (1, -1, 0)),
    "square": ((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)),
    "line": ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3)),
    "corner": ((0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)),
    "L": ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)),
    "T": ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 1)),
    "zigzag": ((0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)),
}
TETRIS_NAMES: tuple[str, ...] = tuple(TETRIS_SHAPES)
CHIRAL_PAIR: tuple[int, int] = (0, 1)  # indices of the two mirror-image shapes


def tetris_positions(scale: float = 1.0) -> np.ndarray:
    """(8, 4, 3) block centres in Å, each shape centred on its centroid."""
    shapes = np.array([TETRIS_SHAPES[name] for name in TETRIS_NAMES], dtype=np.float64) * scale
    return shapes - shapes.mean(axis=1, keepdims=True)


def random_rotations(n: int, seed: int) -> np.ndarray:
    """(n, 3, 3) rotation matrices drawn uniformly from SO(3) (Haar measure, via quaternions)."""
    q = np.random.default_rng(seed).normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def tetris_molecules(scale: float = 1.5, element: str = "C", rotation: np.ndarray | None = None):
    """The eight shapes as pymatgen Molecules of one element (label i = index in TETRIS_NAMES).

    ``rotation`` (3, 3) or (8, 3, 3) rotates each shape about its centroid; the default is the
    canonical (training) orientation. ``scale`` is the block spacing in Å.
    """
    positions = tetris_positions(scale)
    if rotation is not None:
        rotation = np.broadcast_to(np.asarray(rotation, dtype=np.float64), (len(positions), 3, 3))
        positions = np.einsum("sij,saj->sai", rotation, positions)
    return [Molecule([element] * len(shape), shape) for shape in positions]


def rotated_tetris(n_copies: int, seed: int, scale: float = 1.5, element: str = "C"):
    """``n_copies`` randomly rotated (and translated) copies of each shape: (molecules, labels)."""
    rotations = random_rotations(n_copies * len(TETRIS_NAMES), seed)
    shifts = np.random.default_rng(seed + 1).normal(scale=3.0, size=(len(rotations), 3))
    molecules, labels = [], []
    for copy in range(n_copies):
        block = slice(copy * len(TETRIS_NAMES), (copy + 1) * len(TETRIS_NAMES))
        for label, (molecule, shift) in enumerate(
            zip(tetris_molecules(scale, element, rotations[block]), shifts[block])
        ):
            molecule.translate_sites(list(range(len(molecule))), shift)
            molecules.append(molecule)
            labels.append(label)
    return molecules, np.array(labels)


def _graphs(molecules, cutoff):
    return collate([to_graph(m, cutoff) for m in molecules])


def train_tetris(
    seed: int = 0, steps: int = 400, lr: float = 1e-2, preset: str = "S", scale: float = 1.5, **encoder_overrides
):
    """Train on the eight shapes in their canonical orientation only: ``(model, metrics)``.

    Full-batch Adam until every shape is right with a small loss (or ``steps`` run out).
    """
    torch.manual_seed(seed)
    model = build_tetris_classifier(preset, **encoder_overrides)
    batch = _graphs(tetris_molecules(scale), model.encoder.cutoff)
    labels = torch.arange(len(TETRIS_NAMES))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        logits = model(batch)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if losses[-1] < 1e-2 and bool((logits.argmax(1) == labels).all()):
            break
    model.eval()
    with torch.no_grad():
        train_accuracy = float((model(batch).argmax(1) == labels).double().mean())
    return model, {"steps": len(losses), "final_loss": losses[-1], "train_accuracy": train_accuracy}


def rotated_accuracy(model, n_copies: int = 100, seed: int = 1, scale: float = 1.5) -> float:
    """Accuracy on ``n_copies`` randomly rotated and translated copies of every shape."""
    molecules, labels = rotated_tetris(n_copies, seed, scale)
    model.eval()
    with torch.no_grad():
        predicted = model(_graphs(molecules, model.encoder.cutoff)).argmax(1).numpy()
    return float((predicted == labels).mean())
