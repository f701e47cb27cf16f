"""The fast message path (edge_messages.py, chunked Interaction.forward) equals plain e3nn.

The reference is Interaction.forward_reference: e3nn's o3.TensorProduct and FullyConnectedNet on
all edges at once. Shipped checkpoints must give the same latents and predictions either way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn import o3
from pymatgen.core import Lattice, Structure

from motif_screen import keys
from motif_screen.graphs import collate, to_graph
from motif_screen.model.blocks import Interaction, both_directions, hidden_irreps, sh_parity
from motif_screen.model.edge_messages import fold_mlp, messages, plan_paths


def random_edges(irreps_in, irreps_sh, n_nodes=12, n_edges=150, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_nodes, irreps_in.dim, generator=g, dtype=dtype)
    vec = torch.randn(n_edges, 3, generator=g, dtype=dtype)
    sh = o3.spherical_harmonics(irreps_sh, vec, normalize=True, normalization="component")
    radial = torch.randn(n_edges, 8, generator=g, dtype=dtype)
    src = torch.randint(0, n_nodes, (n_edges,), generator=g)
    dst = torch.randint(0, n_nodes, (n_edges,), generator=g)
    return x, sh, radial, src, dst


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lmax", [1, 2, 3])
@pytest.mark.parametrize("scalar_input", [True, False])
def test_interaction_fast_path_equals_e3nn_reference(lmax, scalar_input, dtype):
    torch.manual_seed(lmax)
    sh = o3.Irreps.spherical_harmonics(lmax)
    hidden = hidden_irreps(16, lmax)
    irreps_in = o3.Irreps("16x0e") if scalar_input else hidden
    # built in the test dtype: e3nn stores its Clebsch-Gordan buffers in the default dtype at
    # construction, so a float32-built reference cast to float64 is only float32-accurate
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        block = Interaction(irreps_in, sh, hidden, 8, 16, 10.0)
    finally:
        torch.set_default_dtype(previous)
    assert block._plan is not None
    block.edge_chunk = 37  # several chunks, the last one partial
    args = random_edges(irreps_in, sh, dtype=dtype, seed=lmax)
    with torch.no_grad():
        fast, ref = block(*args), block.forward_reference(*args)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(fast, ref, atol=tol * float(ref.abs().max()), rtol=0)


@pytest.mark.parametrize("lmax", [1, 2, 3])
def test_undirected_edges_equal_the_reference_on_both_directions(lmax):
    """Edges listed once, messages sent both ways (radial MLP shared) = every directed edge through e3nn."""
    sh_irreps = o3.Irreps.spherical_harmonics(lmax)
    hidden = hidden_irreps(16, lmax)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        block = Interaction(hidden, sh_irreps, hidden, 8, 16, 10.0)
    finally:
        torch.set_default_dtype(previous)
    block.edge_chunk = 50  # several chunks of 25 undirected edges
    x, sh, radial, src, dst = random_edges(hidden, sh_irreps, dtype=torch.float64, seed=lmax)
    parity = sh_parity(sh_irreps).double()
    vec = torch.randn(150, 3, dtype=torch.float64)
    sh = o3.spherical_harmonics(sh_irreps, vec, normalize=True, normalization="component")
    reverse_sh = o3.spherical_harmonics(sh_irreps, -vec, normalize=True, normalization="component")
    torch.testing.assert_close(sh * parity, reverse_sh, atol=1e-12, rtol=0)  # Y(-r) = (-1)^l Y(r)
    with torch.no_grad():
        fast = block(x, sh, radial, src, dst, parity)
        ref = block.forward_reference(x, *both_directions(sh, radial, src, dst, parity))
    torch.testing.assert_close(fast, ref, atol=1e-12 * float(ref.abs().max()), rtol=0)


def test_messages_equal_tensor_product_for_every_path_kind():
    tp_in, sh = hidden_irreps(8, 2), o3.Irreps.spherical_harmonics(2)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # see the test above: e3nn's float64 reference needs it
    try:
        block = Interaction(tp_in, sh, tp_in, 8, 16, 5.0)
    finally:
        torch.set_default_dtype(previous)
    plan = block._plan
    assert {p.kind for p in plan.paths} == {"l1=0", "l2=0", "l3=0", "general"}
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, block.tp.irreps_in1.dim, generator=g, dtype=torch.float64)
    y = o3.spherical_harmonics(sh, torch.randn(40, 3, generator=g, dtype=torch.float64), True, normalization="component")
    w = torch.randn(40, block.tp.weight_numel, generator=g, dtype=torch.float64)
    fast = messages(plan, x[:, plan.in_to_component_major], y, w * block.weight_scale)[:, plan.out_to_e3nn]
    torch.testing.assert_close(fast, block.tp(x, y, w), atol=1e-12, rtol=0)
    radial = torch.randn(40, 8, generator=g, dtype=torch.float64)
    torch.testing.assert_close(fold_mlp(block.radial, None)(radial), block.radial(radial), atol=1e-12, rtol=0)


def test_gradients_match_the_reference():
    """Training (and the decoder's velocity field) backpropagate through the fast path."""
    block = Interaction(o3.Irreps("8x0e+4x1o"), o3.Irreps.spherical_harmonics(1), o3.Irreps("8x0e+4x1o"), 8, 16, 5.0).double()
    block.edge_chunk = 20
    x, sh, radial, src, dst = random_edges(block.irreps_in, block.irreps_sh, dtype=torch.float64)
    grads = []
    for fn in (block.forward, block.forward_reference):
        xi = x.clone().requires_grad_(True)
        block.zero_grad()
        fn(xi, sh, radial, src, dst).pow(2).sum().backward()
        grads.append((xi.grad, block.radial.layer1.weight.grad.clone(), block.linear_out.weight.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_component_major_permutations_are_inverse():
    from motif_screen.model.edge_messages import component_major

    irreps = o3.Irreps("3x0e+2x1o+1x2e")
    forward, inverse = component_major(irreps)
    assert forward.tolist()[:7] == [0, 1, 2, 3, 6, 4, 7]  # scalars, then x components of both vectors...
    assert torch.equal(forward[inverse], torch.arange(irreps.dim))


def test_unsupported_tensor_product_falls_back_to_e3nn():
    tp = o3.FullyConnectedTensorProduct("4x0e+2x1o", "1x0e+1x1o", "4x0e", shared_weights=False)
    assert plan_paths(tp) is None
    shared = o3.TensorProduct("4x0e", "1x0e", "4x0e", [(0, 0, 0, "uvu", True)])
    assert plan_paths(shared) is None


def test_checkpoint_and_state_dict_keys_are_unchanged():
    block = Interaction(o3.Irreps("8x0e"), o3.Irreps.spherical_harmonics(1), hidden_irreps(8, 1), 8, 16, 5.0)
    assert not any("weight_scale" in k for k in block.state_dict())


def _perovskites(n=6, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        s = Structure(Lattice.cubic(rng.uniform(3.8, 4.1)), ["Sr", "Ti", "O", "O", "O"],
                      [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        s = s * (1, 1, 1 + i % 3)
        s.perturb(0.1, min_distance=0.0)
        out.append(s)
    return out


def test_shipped_checkpoint_encoder_gives_the_same_latents(monkeypatch):
    """The trained encoder weights in the shipped checkpoint (loaded strictly, whatever the
    decoder's state) give the same latent through the fast path as through plain e3nn."""
    from motif_screen.model.encoder import build_encoder
    from motif_screen.pretrained import shipped_checkpoint

    payload = torch.load(shipped_checkpoint(), map_location="cpu", weights_only=True)
    config = payload["model_config"]
    encoder = build_encoder(config["encoder_preset"], vocabulary=config["elements"], **config["encoder_options"])
    prefix = "encoder."
    encoder.load_state_dict({k[len(prefix):]: v for k, v in payload["state_dict"].items() if k.startswith(prefix)}, strict=True)
    encoder.eval()
    batch = collate([to_graph(s, encoder.cutoff, encoder.vocabulary) for s in _perovskites()])
    with torch.no_grad():
        fast = encoder(batch)
        monkeypatch.setattr(Interaction, "forward", Interaction.forward_reference)
        ref = encoder(batch)
    for key in (keys.LATENT, keys.LATENT_EQUIVARIANT, keys.NODE_FEATURES):
        torch.testing.assert_close(fast[key], ref[key], atol=1e-5 * max(1.0, float(ref[key].abs().max())), rtol=0)


def test_shipped_autoencoder_gives_the_same_predictions(monkeypatch):
    from motif_screen.model.checkpoint import load_autoencoder
    from motif_screen.pretrained import shipped_checkpoint

    model = load_autoencoder(shipped_checkpoint())
    model.eval()
    structures = _perovskites()
    with torch.no_grad():
        fast = model.encode(structures)
        fast_props = model.predict_properties(fast)
        monkeypatch.setattr(Interaction, "forward", Interaction.forward_reference)
        ref = model.encode(structures)
        ref_props = model.predict_properties(ref)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)
    for name in ref_props:
        for a, b in zip(fast_props[name], ref_props[name]):
            torch.testing.assert_close(a, b, atol=1e-5 * max(1.0, float(b.abs().max())), rtol=0)


def test_property_model_predictions_do_not_depend_on_chunking_or_batching(monkeypatch):
    from motif_screen.model import build_property_model

    torch.manual_seed(0)
    model = build_property_model(["heat_ref"], "S").eval()
    structures = _perovskites(8, seed=3)
    fast = model.predict(structures, batch_size=3)["heat_ref"][0]
    monkeypatch.setattr(Interaction, "forward", Interaction.forward_reference)
    batch = collate([to_graph(s, model.cutoff, model.vocabulary) for s in structures])
    with torch.no_grad():
        ref = model(batch)["mean"][:, 0].double().numpy()
        latent = model.encoder(batch)[keys.LATENT]
    assert torch.isfinite(latent).all()
    np.testing.assert_allclose(fast, ref, atol=1e-5 * max(1.0, np.abs(ref).max()))
