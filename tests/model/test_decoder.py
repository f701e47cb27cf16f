"""The decoder: geometry helpers, periodic neighbour search, equivariance of the velocity field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn.util.test import assert_equivariant
from pymatgen.core import Lattice, Structure

from motif_screen.model.decoder import (
    Decoder,
    DecoderConfig,
    align_rotation,
    align_translation,
    assign_noise,
    best_compositions,
    counts_from_log_probs,
    lattice_from_params,
    params_from_lattice,
    radius_graph,
    wrap_delta,
    wrap_frac,
)

ELEMENTS = [8, 22, 38]


def perovskite(a=3.9, d=0.0):
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5 + d], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def triclinic():
    lattice = Lattice.from_parameters(4.1, 5.3, 6.2, 81.0, 97.0, 104.0)
    return Structure(lattice, ["Sr", "O", "Ti", "O"], [[0.1, 0.2, 0.3], [0.6, 0.1, 0.9], [0.4, 0.7, 0.2], [0.9, 0.5, 0.6]])


def small_decoder(periodic=True, seed=0):
    torch.manual_seed(seed)
    return Decoder(DecoderConfig(latent_dim=6, elements=ELEMENTS, periodic=periodic, channels=8, num_layers=2, max_atoms=8))


def test_wrap_frac_maps_into_unit_cell():
    x = torch.tensor([[-0.25, 1.0, 2.75]])
    assert torch.allclose(wrap_frac(x), torch.tensor([[0.75, 0.0, 0.75]]))


def test_lattice_parameters_round_trip_and_match_pymatgen():
    params = torch.tensor([[4.1, 5.3, 6.2, 81.0, 97.0, 104.0]], dtype=torch.float64)
    cell = lattice_from_params(params)
    expected = Lattice.from_parameters(4.1, 5.3, 6.2, 81.0, 97.0, 104.0).matrix
    assert np.allclose(cell[0].numpy(), expected, atol=1e-8)
    assert torch.allclose(params_from_lattice(cell), params, atol=1e-8)


def test_counts_from_log_probs_is_the_exact_best_composition_with_that_total():
    """Brute force over all compositions of 3 elements with counts 0..4 agrees with the DP."""
    import itertools

    gen = torch.Generator().manual_seed(0)
    log_probs = torch.randn(6, 3, 5, generator=gen, dtype=torch.float64).log_softmax(-1)
    totals = torch.tensor([1, 2, 3, 5, 7, 4])
    counts = counts_from_log_probs(log_probs, totals)
    for b in range(6):
        options = [c for c in itertools.product(range(5), repeat=3) if sum(c) == int(totals[b])]
        best = max(options, key=lambda c: sum(float(log_probs[b, e, c[e]]) for e in range(3)))
        assert tuple(counts[b].tolist()) == best


def test_align_translation_removes_a_rigid_shift_and_never_lengthens_paths():
    gen = torch.Generator().manual_seed(1)
    cell = torch.tensor([[[4.0, 0.0, 0.0], [0.3, 4.2, 0.0], [0.0, 0.2, 3.9]]], dtype=torch.float64).repeat(2, 1, 1)
    num_nodes = torch.tensor([5, 4])
    noise = torch.rand(9, 3, generator=gen, dtype=torch.float64)
    shifted = wrap_frac(noise + torch.tensor([0.37, -0.21, 0.45], dtype=torch.float64))  # the same crystal, moved
    aligned = align_translation(shifted, noise, num_nodes, cell)
    assert torch.allclose(wrap_delta(aligned - noise), torch.zeros_like(noise), atol=1e-9)

    data = torch.rand(9, 3, generator=gen, dtype=torch.float64)
    aligned = align_translation(data, noise, num_nodes, cell)
    batch = torch.repeat_interleave(torch.arange(2), num_nodes)

    def cost(x):
        d = torch.einsum("ni,nij->nj", wrap_delta(x - noise), cell[batch])
        return torch.zeros(2, dtype=x.dtype).index_add_(0, batch, (d**2).sum(-1))

    assert (cost(aligned) <= cost(data) + 1e-12).all()
    # only a rigid shift: interatomic fractional differences are unchanged modulo the lattice
    assert torch.allclose(wrap_delta((aligned[1:5] - aligned[0]) - (data[1:5] - data[0])), torch.zeros(4, 3, dtype=torch.float64), atol=1e-9)


def test_align_rotation_undoes_a_rotation_and_keeps_chirality():
    from e3nn import o3

    gen = torch.Generator().manual_seed(2)
    num_nodes = torch.tensor([6, 5])
    noise = torch.randn(11, 3, generator=gen, dtype=torch.float64)
    rot = o3.rand_matrix(2, dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(2), num_nodes)
    rotated = torch.einsum("nij,nj->ni", rot[batch].transpose(1, 2), noise)
    assert torch.allclose(align_rotation(rotated, noise, num_nodes), noise, atol=1e-9)
    mirrored = -noise  # a reflection is not undone: the result stays a proper rotation of the input
    aligned = align_rotation(mirrored, noise, num_nodes)
    assert torch.allclose(torch.cdist(aligned[:6], aligned[:6]), torch.cdist(mirrored[:6], mirrored[:6]), atol=1e-9)
    assert not torch.allclose(aligned, noise, atol=1e-3)


def test_best_compositions_are_the_k_best_in_order():
    """Brute force over all compositions of 4 elements with counts 0..3 agrees with the k-best DP,
    and a total with fewer compositions than k pads with -inf."""
    import itertools

    gen = torch.Generator().manual_seed(4)
    log_probs = torch.randn(3, 4, 4, generator=gen, dtype=torch.float64).log_softmax(-1)
    totals = torch.tensor([2, 5, 1])
    counts, scores = best_compositions(log_probs, totals, k=6)
    for b in range(3):
        options = [c for c in itertools.product(range(4), repeat=4) if sum(c) == int(totals[b])]
        ranked = sorted(options, key=lambda c: -sum(float(log_probs[b, e, c[e]]) for e in range(4)))
        found = [tuple(row) for row, sc in zip(counts[b].tolist(), scores[b]) if torch.isfinite(sc)]
        assert found == ranked[:6]
    assert torch.isinf(scores[2, 4:]).all()  # 4 ways to place one atom
    assert (scores[:, :-1] >= scores[:, 1:]).all()


def test_counts_from_log_probs_respects_forbidden_elements():
    log_probs = torch.zeros(1, 3, 6).log_softmax(-1)
    log_probs[0, 1, 1:] = -torch.inf  # element 1 must stay at zero
    counts = counts_from_log_probs(log_probs, torch.tensor([5]))[0]
    assert counts[1] == 0 and counts.sum() == 5


def sheared_small_cell():
    """A thin, strongly sheared cell with atoms outside [0, 1): images two cells away are neighbours."""
    lattice = Lattice([[2.6, 0.0, 0.0], [2.2, 2.5, 0.0], [-1.1, 0.7, 2.8]])
    return Structure(lattice, ["Sr", "O", "O"], [[0.0, 0.0, 0.0], [1.45, -0.3, 0.6], [-0.7, 0.45, 2.2]],
                     to_unit_cell=False)


@pytest.mark.parametrize("structure", [perovskite(), triclinic(), sheared_small_cell()])
def test_periodic_radius_graph_matches_pymatgen(structure):
    cutoff = 4.5
    pos = torch.tensor(structure.cart_coords)
    cell = torch.tensor(structure.lattice.matrix)[None]
    edge_index, vectors = radius_graph(pos, torch.tensor([len(structure)]), cutoff, cell)
    centers, neighbors, _, distances = structure.get_neighbor_list(cutoff)
    assert edge_index.shape[1] == len(distances)
    ours = sorted(np.round(vectors.norm(dim=1).numpy(), 6))
    theirs = sorted(np.round(distances, 6))
    assert np.allclose(ours, theirs)


@pytest.mark.parametrize("structure", [perovskite(), triclinic(), sheared_small_cell(), None])
def test_undirected_radius_graph_and_its_reverses_are_the_directed_graph(structure):
    if structure is None:  # a molecule
        pos, cell = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.2, 0.0], [1.9, 0.0, 0.5], [9.0, 0.0, 0.0]]), None
    else:
        pos, cell = torch.tensor(structure.cart_coords), torch.tensor(structure.lattice.matrix)[None]
    n = torch.tensor([len(pos)])
    (src, dst), vec = radius_graph(pos, n, 4.5, cell)
    (hs, hd), hv = radius_graph(pos, n, 4.5, cell, undirected=True)
    assert 2 * len(hv) == len(vec)
    directed = sorted(zip(src.tolist(), dst.tolist(), np.round(vec.numpy(), 9).tolist()))
    both = list(zip(hs.tolist(), hd.tolist(), np.round(hv.numpy(), 9).tolist()))
    both += list(zip(hd.tolist(), hs.tolist(), np.round(-hv.numpy(), 9).tolist()))
    assert sorted(both) == directed


def test_molecule_graph_has_no_images():
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [9.0, 0.0, 0.0]])
    edge_index, _ = radius_graph(pos, torch.tensor([3]), 2.0)
    assert sorted(map(tuple, edge_index.T.tolist())) == [(0, 1), (1, 0)]


def _field_inputs(dtype):
    s1, s2 = perovskite(d=0.04), triclinic()
    pos = torch.tensor(np.concatenate([s1.cart_coords, s2.cart_coords]), dtype=dtype)
    cell = torch.tensor(np.stack([s1.lattice.matrix, s2.lattice.matrix]), dtype=dtype)
    species = torch.tensor([2, 1, 0, 0, 0, 2, 0, 1, 0])
    return pos, cell, species, torch.tensor([5, 4]), torch.tensor([0.3, 0.7], dtype=dtype), torch.randn(2, 6, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_velocity_field_is_equivariant(dtype):
    """Rotating (and inverting, translating) positions and cell rotates the predicted velocities."""
    dec = small_decoder().to(dtype)
    pos, cell, species, num_nodes, t, latent = _field_inputs(dtype)

    def field(p, c):
        return dec.velocity(p, species, num_nodes, c, t, latent)

    # e3nn builds the rotation it applies from float32 constants (~1e-7 relative), and the field
    # amplifies an input error by its sensitivity, so even in float64 this harness resolves only
    # ~1e-7; the exact-matrix check below (float64 rotation) goes to 1e-12
    tol = 1e-4 if dtype == torch.float32 else 1e-6
    assert_equivariant(field, [pos, cell], irreps_in=["cartesian_points", "1o"], irreps_out=["1o"], tolerance=tol)


def test_velocity_field_rotates_exactly_in_float64():
    from e3nn import o3

    dec = small_decoder().double()
    pos, cell, species, num_nodes, t, latent = _field_inputs(torch.float64)
    rot = o3.rand_matrix(dtype=torch.float64) * -1.0  # a rotoinversion
    out = dec.velocity(pos, species, num_nodes, cell, t, latent)
    rotated = dec.velocity(pos @ rot.T + 3.0, species, num_nodes, cell @ rot.T, t, latent)
    assert out.abs().max() > 1e-6
    assert torch.allclose(rotated, out @ rot.T, atol=1e-12 * float(out.abs().max()) + 1e-15)


def test_velocity_field_is_periodic_and_permutation_equivariant():
    dec = small_decoder().double()
    pos, cell, species, num_nodes, t, latent = _field_inputs(torch.float64)
    out = dec.velocity(pos, species, num_nodes, cell, t, latent)
    # moving an atom by a lattice vector changes nothing
    moved = pos.clone()
    moved[1] += cell[0, 2] - cell[0, 0]
    assert torch.allclose(dec.velocity(moved, species, num_nodes, cell, t, latent), out, atol=1e-10)
    # permuting atoms of one structure permutes the output
    perm = torch.tensor([3, 0, 4, 1, 2, 5, 6, 7, 8])
    assert torch.allclose(dec.velocity(pos[perm], species[perm], num_nodes, cell, t, latent), out[perm], atol=1e-10)


def test_noise_assignment_is_a_within_species_permutation_that_shortens_paths():
    torch.manual_seed(0)
    species = torch.tensor([0, 0, 0, 1, 2, 0, 0, 1, 1])
    num_nodes = torch.tensor([5, 4])
    data, noise = torch.rand(9, 3), torch.rand(9, 3)
    paired = assign_noise(noise, data, species, num_nodes)
    # the same set of noise points per (structure, species) group
    for lo, hi in ((0, 5), (5, 9)):
        for sp in species[lo:hi].unique():
            group = (species[lo:hi] == sp).nonzero()[:, 0] + lo
            assert torch.allclose(paired[group].sort(0).values, noise[group].sort(0).values)
    delta = lambda a: ((data - a) - torch.round(data - a)).pow(2).sum()  # noqa: E731
    assert delta(paired) <= delta(noise) + 1e-9


def test_decode_shapes_and_wrapping():
    dec = small_decoder().eval()
    out = dec.decode(torch.randn(3, 6), counts=[[3, 1, 1], [2, 1, 1], [1, 1, 0]], steps=4, generator=torch.Generator().manual_seed(0))
    assert out.num_nodes.tolist() == [5, 4, 2]
    assert out.cell.shape == (3, 3, 3) and out.frac_coords.shape == (11, 3)
    assert bool(((out.frac_coords >= 0) & (out.frac_coords < 1)).all())
    assert out.atomic_numbers[:5].tolist() == [8, 8, 8, 22, 38]


def test_decode_is_deterministic_for_a_seed_and_molecules_have_no_cell():
    dec = small_decoder(periodic=False).eval()
    z = torch.randn(2, 6)
    a = dec.decode(z, counts=[[2, 1, 1], [1, 1, 1]], steps=3, generator=torch.Generator().manual_seed(1))
    b = dec.decode(z, counts=[[2, 1, 1], [1, 1, 1]], steps=3, generator=torch.Generator().manual_seed(1))
    assert a.cell is None and torch.equal(a.positions, b.positions)
    # molecules are generated centred (no drift of the centre of mass)
    assert torch.allclose(a.positions[:4].mean(0), torch.zeros(3), atol=1e-5)


def test_training_losses_are_finite_and_differentiable():
    dec = small_decoder()
    s = perovskite()
    pos = torch.tensor(np.concatenate([s.cart_coords] * 2), dtype=torch.float32)
    cell = torch.tensor(np.stack([s.lattice.matrix] * 2), dtype=torch.float32)
    species = torch.tensor([2, 1, 0, 0, 0] * 2)
    num_nodes = torch.tensor([5, 5])
    dec.fit_lattice_scaler(cell, num_nodes)
    terms = dec.losses(torch.randn(2, 6), species, num_nodes, pos, cell, generator=torch.Generator().manual_seed(0))
    assert set(terms) == {"num_atoms", "composition", "lattice", "coords", "denoise"}
    total = sum(terms.values())
    total.backward()
    assert torch.isfinite(total)
    assert all(p.grad is not None for p in dec.velocity.parameters() if p.requires_grad)


def test_denoising_examples_and_the_snap_steps_that_end_decoding():
    """With every structure made a denoising example the flow term is empty and the denoising term
    is finite with gradients; decoding runs its flow steps, then snap steps at falling noise levels."""
    torch.manual_seed(0)
    dec = Decoder(DecoderConfig(latent_dim=6, elements=ELEMENTS, channels=8, num_layers=2, max_atoms=8, denoise_fraction=1.0))
    s = perovskite()
    pos = torch.tensor(s.cart_coords, dtype=torch.float32)
    cell = torch.tensor(s.lattice.matrix, dtype=torch.float32)[None]
    terms = dec.losses(torch.randn(1, 6), torch.tensor([2, 1, 0, 0, 0]), torch.tensor([5]), pos, cell,
                       generator=torch.Generator().manual_seed(0))
    assert float(terms["coords"]) == 0.0 and torch.isfinite(terms["denoise"]) and float(terms["denoise"]) > 0
    terms["denoise"].backward()
    assert dec.velocity.readout.weight.grad is not None
    sigmas = dec.snap_sigmas()
    assert len(sigmas) == dec.config.snap_steps and sigmas == sorted(sigmas, reverse=True)
    assert sigmas[0] == pytest.approx(dec.config.denoise_sigma_max / 2) and sigmas[-1] == pytest.approx(dec.config.denoise_sigma_max / 30)
    out = dec.eval().decode(torch.randn(1, 6), counts=[[3, 1, 1]], steps=4, keep_trajectory=True)
    assert len(out.trajectory) == 4 + len(sigmas)


def peaked_log_probs(dec):
    """Composition scores over (O, Ti, Sr) whose best 5-atom composition is SrO4, then SrTiO3."""
    log_probs = torch.full((1, 3, dec.config.max_atoms + 1), -10.0)
    log_probs[0, 0, 4], log_probs[0, 0, 3] = 0.0, -1.0  # O: 4, else 3
    log_probs[0, 1, 0], log_probs[0, 1, 1] = 0.0, -1.5  # Ti: 0, else 1
    log_probs[0, 2, 1] = 0.0  # Sr: 1
    return lambda latent: log_probs.log_softmax(-1).expand(len(latent), -1, -1)


def test_counts_take_the_most_probable_composition_a_rule_accepts():
    """The decoder knows no chemistry: given a rule (here "some Ti"), it takes the most probable
    composition the rule accepts, and the most probable one when the rule accepts none."""
    dec = small_decoder()  # vocabulary O, Ti, Sr
    dec.composition_log_probs = peaked_log_probs(dec)
    z = torch.zeros(1, 6)
    assert dec.predict_counts(z, num_atoms=[5]) == [[4, 0, 1]]
    assert dec.predict_counts(z, num_atoms=[5], accept=lambda row: row[1] > 0) == [[3, 1, 1]]
    assert dec.predict_counts(z, num_atoms=[5], accept=lambda row: False) == [[4, 0, 1]]


def test_predicted_angles_always_span_a_cell():
    """Three angles in (30°, 150°) need not span a cell (150/150/150 has none): the decoder moves them
    towards 90° just enough, so a lattice it emits is never singular; feasible angles are untouched."""
    from motif_screen.model.decoder import MIN_VOLUME_FACTOR, feasible_angles, lattice_from_params

    angles = torch.tensor([[150.0, 150.0, 150.0], [40.0, 40.0, 120.0], [30.0, 30.0, 150.0], [90.0, 90.0, 90.0],
                           [60.0, 60.0, 60.0], [100.0, 80.0, 95.0]])
    fixed = feasible_angles(angles)
    cells = lattice_from_params(torch.cat([torch.ones(len(angles), 3), fixed], dim=-1))
    volume_factor = torch.linalg.det(cells) ** 2  # unit lengths: V² / (abc)²
    assert (volume_factor >= MIN_VOLUME_FACTOR - 1e-6).all()
    assert torch.equal(fixed[3:], angles[3:])
    assert (torch.linalg.det(lattice_from_params(torch.cat([torch.ones(3, 3), angles[:3]], dim=-1))).abs() < 1e-3).any()


def test_the_species_head_reassigns_sites_within_the_composition():
    """type_head: per-site logits from geometry and latent (species_logits takes no species), trained
    over each structure's own elements; decoding keeps every composition and ends with the Hungarian
    assignment the head prefers."""
    torch.manual_seed(0)
    dec = Decoder(DecoderConfig(latent_dim=6, elements=ELEMENTS, channels=8, num_layers=2, max_atoms=8, type_head=True))
    s = perovskite()
    pos = torch.tensor(s.cart_coords, dtype=torch.float32)
    cell = torch.tensor(s.lattice.matrix, dtype=torch.float32)[None]
    z, sigma = torch.randn(1, 6), torch.tensor([0.02])
    logits = dec.velocity.species_logits(pos, torch.tensor([5]), cell, z, sigma)
    assert logits.shape == (5, len(ELEMENTS))
    terms = dec.losses(z, torch.tensor([2, 1, 0, 0, 0]), torch.tensor([5]), pos, cell,
                       generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(terms["types"]) and float(terms["types"]) > 0
    terms["types"].backward()
    assert dec.velocity.type_readout.weight.grad is not None
    # the head prefers Sr on site 0 and Ti on site 1 whatever the flow put there: the assignment follows it
    species = torch.tensor([0, 0, 0, 1, 2])  # O O O Ti Sr, as decoding lays a composition out
    with torch.no_grad():
        dec.velocity.type_readout.weight.zero_()
        dec.velocity.type_readout.bias.zero_()
    preferred = torch.tensor([[0.0, 0.0, 9.0], [0.0, 9.0, 0.0], [9.0, 0, 0], [9.0, 0, 0], [9.0, 0, 0]])
    dec.velocity.species_logits = lambda pos, *args, **kwargs: preferred.repeat(len(pos) // 5, 1)
    assigned = dec.assign_species(pos, species, torch.tensor([5]), cell, z)
    assert assigned.tolist() == [2, 1, 0, 0, 0]
    out = dec.eval().decode(torch.randn(2, 6), counts=[[3, 1, 1], [3, 1, 1]], steps=3,
                            generator=torch.Generator().manual_seed(0))
    assert out.species.tolist() == [2, 1, 0, 0, 0] * 2 and out.atomic_numbers[:2].tolist() == [38, 22]


def test_a_decoder_without_the_species_head_has_no_types_term():
    dec = small_decoder()
    with pytest.raises(RuntimeError, match="no species head"):
        dec.velocity.species_logits(torch.zeros(2, 3), torch.tensor([2]), None, torch.zeros(1, 6), torch.tensor([0.02]))
