"""Equivariance at three levels: each e3nn module, whole crystals/molecules, and a negative control."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant
from pymatgen.core import Lattice, Structure

from motif_screen import keys
from motif_screen.graphs import collate, to_graph, with_dtype
from motif_screen.model import EnsembleHeads, Interaction, MeanPool, RadialEmbedding, build_encoder, gate_for, hidden_irreps

DTYPES = [torch.float32, torch.float64]


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    old = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    torch.manual_seed(0)
    yield request.param
    torch.set_default_dtype(old)


def distorted_perovskite() -> Structure:
    """Polar (non-centrosymmetric) and triclinic-ish, so vector features are not zero by symmetry."""
    lattice = Lattice.from_parameters(3.95, 4.02, 3.88, 89.0, 91.5, 90.3)
    return Structure(lattice, ["Ba", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.53, 0.51, 0.48], [0.5, 0.5, 0.03], [0.51, 0.02, 0.5], [0.0, 0.49, 0.52]])


# --- level 1: every module ---------------------------------------------------------------------

def test_radial_embedding_is_invariant_and_smooth_at_cutoff(dtype):
    radial = RadialEmbedding(cutoff=4.0, num_basis=8)
    assert_equivariant(radial, args_in=[torch.rand(20, 1) * 3.5 + 0.5])
    edge = radial(torch.tensor([[3.9999], [4.0], [4.5]]))
    assert edge.abs().max() < 1e-6


def test_interaction_block_is_equivariant(dtype):
    irreps_sh = o3.Irreps.spherical_harmonics(2)
    irreps_hidden = hidden_irreps(16, 2)
    for irreps_in in (o3.Irreps("16x0e"), irreps_hidden):
        block = Interaction(irreps_in, irreps_sh, irreps_hidden, num_basis=8, radial_hidden=16, avg_num_neighbors=4.0)
        n, e = 6, 20
        args = [irreps_in.randn(n, -1), irreps_sh.randn(e, -1), torch.randn(e, 8),
                torch.randint(0, n, (e,)), torch.randint(0, n, (e,))]
        assert_equivariant(block, args_in=args, irreps_in=block.irreps_in_all, irreps_out=block.irreps_out)


def test_gate_pool_and_heads_are_equivariant(dtype):
    gate = gate_for(hidden_irreps(8, 2))
    assert_equivariant(gate)
    pool = MeanPool("4x0e + 2x1o")
    batch = torch.tensor([0, 0, 1, 1, 1])
    assert_equivariant(lambda x: pool(x, batch, 2), args_in=[pool.irreps_in.randn(5, -1)],
                       irreps_in=[pool.irreps_in], irreps_out=[pool.irreps_out])
    heads = EnsembleHeads(latent_dim=12, num_targets=2, ensemble_size=3, hidden=8)
    assert_equivariant(lambda z: torch.cat(heads(z), dim=-1).permute(1, 0, 2).reshape(4, -1),
                       args_in=[torch.randn(4, 12)], irreps_in=["12x0e"], irreps_out=["12x0e"])


def test_spherical_harmonics_and_readout_are_equivariant(dtype):
    encoder = build_encoder("S", lmax=2)
    assert_equivariant(encoder.spherical_harmonics)
    assert_equivariant(encoder.readout)


# --- level 2: whole structures ----------------------------------------------------------------

def _encode(encoder, graph):
    with torch.no_grad():
        return encoder(collate([graph]))


def _rotated(graph, rotation, translation):
    out = dict(graph)
    out[keys.POSITIONS] = graph[keys.POSITIONS] @ rotation.T + translation
    out[keys.CELL] = graph[keys.CELL] @ rotation.T  # lattice rows rotate with the atoms
    return out


def _permuted(graph, perm):
    out = dict(graph)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    for key in (keys.POSITIONS, keys.ATOMIC_NUMBERS):
        out[key] = graph[key][perm]
    out[keys.EDGE_INDEX] = inverse[graph[keys.EDGE_INDEX]]
    return out


@pytest.mark.parametrize("preset_lmax", [1, 2])
def test_crystal_latent_is_invariant_and_vectors_rotate(dtype, preset_lmax):
    encoder = build_encoder("S", lmax=preset_lmax).to(dtype)
    graph = with_dtype(to_graph(distorted_perovskite(), encoder.cutoff), dtype)
    ref = _encode(encoder, graph)
    assert ref[keys.LATENT_EQUIVARIANT].abs().max() > 1e-3  # not trivially zero
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    rotation = o3.rand_matrix().to(dtype)
    moved = _permuted(_rotated(graph, rotation, torch.tensor([1.3, -2.0, 0.7], dtype=dtype)), torch.tensor([3, 0, 4, 1, 2]))
    out = _encode(encoder, moved)
    torch.testing.assert_close(out[keys.LATENT], ref[keys.LATENT], atol=tol, rtol=0)
    d = encoder.irreps_latent_equivariant.D_from_matrix(rotation)
    torch.testing.assert_close(out[keys.LATENT_EQUIVARIANT], ref[keys.LATENT_EQUIVARIANT] @ d.T, atol=tol, rtol=0)


def test_rotated_pymatgen_structure_gives_same_latent():
    """From scratch: rotate the lattice and Cartesian sites in pymatgen, rebuild the neighbour list."""
    torch.manual_seed(0)
    encoder = build_encoder("S").double()
    s = distorted_perovskite()
    rotation = o3.rand_matrix(dtype=torch.float64).numpy()
    rotated = Structure(Lattice(s.lattice.matrix @ rotation.T), s.species, s.cart_coords @ rotation.T + 5.0,
                        coords_are_cartesian=True)
    a = _encode(encoder, to_graph(s, 4.0, dtype=torch.float64))[keys.LATENT]
    b = _encode(encoder, to_graph(rotated, 4.0, dtype=torch.float64))[keys.LATENT]
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_molecule_latent_is_invariant_through_the_same_encoder():
    torch.manual_seed(0)
    encoder = build_encoder("S").double()
    from ase.build import molecule

    g = to_graph(molecule("CH3CH2OH"), 4.0, dtype=torch.float64)
    ref = _encode(encoder, g)
    rotation = o3.rand_matrix(dtype=torch.float64)
    out = _encode(encoder, _rotated(g, rotation, torch.tensor([10.0, 0, -3.0], dtype=torch.float64)))
    torch.testing.assert_close(out[keys.LATENT], ref[keys.LATENT], atol=1e-10, rtol=0)
    vectors = ref[keys.LATENT_EQUIVARIANT].reshape(1, -1, 3)  # Nx1o: each channel is a Cartesian vector
    torch.testing.assert_close(out[keys.LATENT_EQUIVARIANT].reshape(1, -1, 3), vectors @ rotation.T, atol=1e-10, rtol=0)


def test_supercell_has_same_per_atom_invariants_as_primitive():
    torch.manual_seed(0)
    encoder = build_encoder("S").double()
    primitive = distorted_perovskite()
    supercell = primitive * (2, 1, 2)
    p = _encode(encoder, to_graph(primitive, 4.0, dtype=torch.float64))
    s = _encode(encoder, to_graph(supercell, 4.0, dtype=torch.float64))
    # pymatgen's supercell keeps each primitive site's images together: site i -> i*4 .. i*4+3
    per_site = s[keys.NODE_INVARIANTS].reshape(len(primitive), 4, -1)
    torch.testing.assert_close(per_site, p[keys.NODE_INVARIANTS].unsqueeze(1).expand_as(per_site), atol=1e-9, rtol=0)
    torch.testing.assert_close(s[keys.LATENT], p[keys.LATENT], atol=1e-9, rtol=0)


# --- level 3: the check itself catches a broken function --------------------------------------

def test_equivariance_check_catches_non_equivariant_function():
    torch.manual_seed(0)

    def broken(x):  # treats the vector's x component as a scalar: not rotation invariant
        return x[..., :1] * 2.0

    with pytest.raises(AssertionError):
        assert_equivariant(broken, args_in=[torch.randn(10, 3)], irreps_in=["1o"], irreps_out=["0e"])

    encoder = build_encoder("S").double()
    graph = with_dtype(to_graph(distorted_perovskite(), 4.0), torch.float64)
    rotation = o3.rand_matrix(dtype=torch.float64)
    bad = dict(_rotated(graph, rotation, torch.zeros(3, dtype=torch.float64)))
    bad[keys.CELL] = graph[keys.CELL]  # forgetting to rotate the lattice breaks invariance
    assert not torch.allclose(_encode(encoder, bad)[keys.LATENT], _encode(encoder, graph)[keys.LATENT], atol=1e-6)


def test_presets_set_sizes_once_and_reject_unknown_settings():
    from motif_screen.errors import ConfigError
    from motif_screen.model.presets import PRESETS

    enc = build_encoder("M")
    assert enc.cutoff == PRESETS["M"]["cutoff"] and enc.latent_dim == PRESETS["M"]["latent_dim"]
    assert enc.irreps_out[keys.LATENT] == o3.Irreps(f"{PRESETS['M']['latent_dim']}x0e")
    with pytest.raises(ConfigError, match="unknown encoder setting"):
        build_encoder("S", radius=5.0)
    with pytest.raises(ConfigError, match="unknown model preset"):
        build_encoder("XL")
