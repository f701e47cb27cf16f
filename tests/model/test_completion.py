"""The atom-completion head: equivariance, the vote, exact holes, training, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant
from pymatgen.core import Molecule

from motif_screen import keys
from motif_screen.errors import InputError, ModelError
from motif_screen.graphs import collate, remove_atom, to_graph
from motif_screen.model import completion
from motif_screen.model.completion import (
    ELEMENT_LOGITS,
    POSITION,
    CompletionHead,
    build_completion_model,
    complete,
    vote,
)
from motif_screen.training.completion import evaluate_completion, train_completion
from motif_screen.training.config import CompletionConfig

QM9_ELEMENTS = (1, 6, 7, 8, 9)
SMALL = dict(channels=8, layers=2, cutoff=4.0)  # a tiny encoder: equivariance does not need size


def ethanol() -> Molecule:
    from ase.build import molecule as ase_molecule

    atoms = ase_molecule("CH3CH2OH")
    return Molecule(atoms.get_chemical_symbols(), atoms.get_positions())


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(previous)


def test_head_is_equivariant(dtype):
    torch.manual_seed(0)
    head = CompletionHead("8x0e + 4x1o + 2x2e", num_elements=5, hidden_scalars=6, hidden_vectors=3)
    assert head.irreps_out == o3.Irreps("5x0e + 1x0e + 1x1o")
    assert_equivariant(head)


def test_head_without_vectors_is_refused():
    with pytest.raises(ModelError, match="1o"):
        CompletionHead("8x0e", num_elements=5)


def test_whole_model_rotates_the_position_and_keeps_the_element(dtype):
    """O(3) check through encoder + head + vote: positions in, (element logits 0e, position 1o) out."""
    torch.manual_seed(0)
    model = build_completion_model(QM9_ELEMENTS, **SMALL).to(dtype)
    holey = remove_atom(to_graph(ethanol(), model.cutoff, dtype=dtype), 3)
    batch = collate([holey])

    def predict(positions):
        out = model({**batch, keys.POSITIONS: positions})
        return out[ELEMENT_LOGITS], out[POSITION]

    assert_equivariant(predict, args_in=[batch[keys.POSITIONS]], irreps_in=["1o"], irreps_out=["5x0e", "1o"])


def test_prediction_follows_rotation_translation_and_permutation():
    torch.manual_seed(1)
    model = build_completion_model(QM9_ELEMENTS, **SMALL).double()
    full = ethanol()
    holey = full.copy()
    holey.remove_sites([2])
    element, position = complete(model, holey)

    rotation = o3.rand_matrix(dtype=torch.float64).numpy()
    shift = np.array([1.5, -2.0, 0.7])
    moved = Molecule(holey.species, holey.cart_coords @ rotation.T + shift)
    element_moved, position_moved = complete(model, moved)
    assert element_moved == element
    np.testing.assert_allclose(position_moved, rotation @ position + shift, atol=1e-9)

    order = np.random.default_rng(0).permutation(len(holey))
    shuffled = Molecule([holey.species[i] for i in order], holey.cart_coords[order])
    element_shuffled, position_shuffled = complete(model, shuffled)
    assert element_shuffled == element
    np.testing.assert_allclose(position_shuffled, position, atol=1e-9)


def test_vote_is_a_softmax_weighted_mean_per_structure():
    positions = torch.tensor([[0.0, 0, 0], [1, 0, 0], [5, 5, 5]], dtype=torch.float64)
    displacement = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    confidence = torch.tensor([0.0, np.log(3.0), 7.0], dtype=torch.float64)
    scores = torch.tensor([[1.0, 0], [0, 1], [2, 2]], dtype=torch.float64)
    batch = torch.tensor([0, 0, 1])
    out = vote(scores, confidence, displacement, positions, batch, num_graphs=2)
    # graph 0: weights 1/4, 3/4; graph 1: a single atom gets weight 1
    np.testing.assert_allclose(out[completion.ATOM_WEIGHTS], [0.25, 0.75, 1.0])
    np.testing.assert_allclose(out[POSITION][0], 0.25 * np.array([1, 0, 0]) + 0.75 * np.array([1, 1, 0]))
    np.testing.assert_allclose(out[POSITION][1], [5, 5, 6])
    np.testing.assert_allclose(out[ELEMENT_LOGITS], [[0.25, 0.75], [2, 2]])


def test_remove_atom_equals_the_graph_of_the_smaller_molecule():
    full = ethanol()
    for index in (0, 4, len(full) - 1):
        holey = full.copy()
        holey.remove_sites([index])
        expected = to_graph(holey, 4.0)
        got = remove_atom(to_graph(full, 4.0), index)
        torch.testing.assert_close(got[keys.POSITIONS], expected[keys.POSITIONS])
        torch.testing.assert_close(got[keys.ATOMIC_NUMBERS], expected[keys.ATOMIC_NUMBERS])
        assert int(got[keys.NUM_NODES]) == len(holey)
        edges = lambda g: set(map(tuple, g[keys.EDGE_INDEX].T.tolist()))  # noqa: E731
        assert edges(got) == edges(expected)
    with pytest.raises(InputError):
        remove_atom(to_graph(full, 4.0), len(full))


def qm9_like_molecules(n: int, seed: int = 0) -> list[Molecule]:
    """Small real molecules from ASE's G2 set made of H, C, N, O, F (no /work/shared data)."""
    from ase.collections import g2

    molecules = []
    for atoms in g2:
        symbols = set(atoms.get_chemical_symbols())
        if len(atoms) >= 3 and symbols <= {"H", "C", "N", "O", "F"}:
            molecules.append(Molecule(atoms.get_chemical_symbols(), atoms.get_positions()))
    rng = np.random.default_rng(seed)
    return [molecules[i] for i in rng.permutation(len(molecules))[:n]]


def test_training_lowers_the_loss_and_reports_metrics():
    molecules = qm9_like_molecules(24)
    config = CompletionConfig(encoder_overrides=SMALL, epochs=6, batch_size=6, lr=1e-2, seed=0,
                              progress=False, elements=QM9_ELEMENTS)
    model, metrics = train_completion(molecules, config)
    assert metrics["best_val_loss"] < 0.8 * metrics["initial_val_loss"]
    assert metrics["epochs_run"] == 6 and metrics["num_train"] + metrics["num_validation"] == 24
    result = evaluate_completion(model, molecules[:5], remove="all")
    assert result["holes"] == sum(len(m) for m in molecules[:5])
    assert 0.0 <= result["accuracy"] <= result["element_accuracy"] <= 1.0
    element, position = complete(model, molecules[0])
    assert element in {"H", "C", "N", "O", "F"} and position.shape == (3,)


def test_training_is_deterministic_given_the_seed():
    molecules = qm9_like_molecules(12)
    config = CompletionConfig(encoder_overrides=SMALL, epochs=2, batch_size=4, seed=5, progress=False,
                              elements=QM9_ELEMENTS)
    _, first = train_completion(molecules, config)
    _, second = train_completion(molecules, config)
    assert [h["val_loss"] for h in first["history"]] == [h["val_loss"] for h in second["history"]]


def test_bad_input_is_refused_with_a_clear_message():
    torch.manual_seed(0)
    model = build_completion_model(QM9_ELEMENTS, **SMALL)
    with pytest.raises(InputError, match="at least 2 atoms"):
        complete(model, Molecule(["C"], [[0, 0, 0]]))
    with pytest.raises(InputError, match="Si.*vocabulary"):
        complete(model, Molecule(["Si", "H", "H"], [[0, 0, 0], [1.5, 0, 0], [0, 1.5, 0]]))
    with pytest.raises(InputError, match="fewer than 3 atoms"):
        train_completion([ethanol(), Molecule(["H", "H"], [[0, 0, 0], [0.74, 0, 0]])],
                         CompletionConfig(encoder_overrides=SMALL, epochs=1, progress=False))
    with pytest.raises(InputError, match="'all' or 'random'"):
        evaluate_completion(model, [ethanol()], remove="some")


def test_checkpoint_round_trip(tmp_path):
    from motif_screen.model.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = build_completion_model(QM9_ELEMENTS, **SMALL)
    holey = ethanol()
    holey.remove_sites([0])
    path = save_checkpoint(tmp_path / "completion.pt", model, metrics={"accuracy_19": 0.5})
    loaded = load_checkpoint(path)
    assert isinstance(loaded, completion.CompletionModel) and loaded.elements == QM9_ELEMENTS
    assert loaded.checkpoint_info["metrics"] == {"accuracy_19": 0.5}
    element, position = complete(model, holey)
    element_loaded, position_loaded = complete(loaded, holey)
    assert element_loaded == element
    np.testing.assert_allclose(position_loaded, position, atol=1e-6)
