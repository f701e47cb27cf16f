"""3D Tetris: the shapes, random rotations, an O(3)-equivariant classifier trained in one orientation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn.util.test import assert_equivariant

from motif_screen import keys
from motif_screen.graphs import collate, to_graph
from motif_screen.model.tetris import build_tetris_classifier
from motif_screen.training import tetris


def sorted_distances(points: np.ndarray) -> np.ndarray:
    diff = points[:, None] - points[None]
    return np.sort(np.linalg.norm(diff, axis=-1).ravel())


def test_eight_distinct_shapes_with_one_mirror_pair():
    shapes = tetris.tetris_positions(scale=1.0)
    assert shapes.shape == (8, 4, 3)
    np.testing.assert_allclose(shapes.mean(axis=1), 0, atol=1e-12)
    a, b = tetris.CHIRAL_PAIR
    # mirror images: same distances, and reflecting one (x -> -x) gives the other up to a rotation
    np.testing.assert_allclose(sorted_distances(shapes[a]), sorted_distances(shapes[b]))
    mirrored = shapes[a] * np.array([1, -1, 1])
    assert sorted(map(tuple, np.round(mirrored - mirrored.min(0), 6))) == sorted(
        map(tuple, np.round(shapes[b] - shapes[b].min(0), 6))
    )
    others = [sorted_distances(s).round(6).tobytes() for i, s in enumerate(shapes) if i != b]
    assert len(set(others)) == 7  # apart from the mirror pair, distances tell all shapes apart


def test_random_rotations_are_proper_and_molecules_keep_their_shape():
    rotations = tetris.random_rotations(50, seed=0)
    np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0)
    molecules, labels = tetris.rotated_tetris(3, seed=0)
    assert len(molecules) == 24 and labels.tolist() == list(range(8)) * 3
    reference = tetris.tetris_molecules()
    for molecule, label in zip(molecules, labels):
        np.testing.assert_allclose(sorted_distances(molecule.cart_coords),
                                   sorted_distances(reference[label].cart_coords), atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_classifier_features_are_o3_equivariant(dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        torch.manual_seed(0)
        model = build_tetris_classifier(channels=8, layers=2)
        batch = collate([to_graph(m, model.encoder.cutoff) for m in tetris.tetris_molecules()])

        def features(positions):
            return model.features({**batch, keys.POSITIONS: positions})

        # 7x0e invariant, 1x0o flips sign under inversion (what separates the mirror pair)
        assert_equivariant(features, args_in=[batch[keys.POSITIONS]], irreps_in=["1o"], irreps_out=[model.irreps_out])
    finally:
        torch.set_default_dtype(previous)


def test_trained_in_one_orientation_perfect_in_any():
    torch.set_num_threads(1)
    model, metrics = tetris.train_tetris(seed=0, channels=16, layers=2)
    assert metrics["train_accuracy"] == 1.0
    assert tetris.rotated_accuracy(model, n_copies=10, seed=7) == 1.0
    # a mirrored chiral shape is classified as its partner (inversion swaps them)
    a, b = tetris.CHIRAL_PAIR
    mirrored = tetris.tetris_molecules()[a]
    mirrored = type(mirrored)(mirrored.species, -mirrored.cart_coords)
    with torch.no_grad():
        predicted = model(collate([to_graph(mirrored, model.encoder.cutoff)])).argmax(1).item()
    assert predicted == b
