"""Latent -> structure: number of atoms, composition, lattice (MLPs) and coordinates (e3nn flow).

Design (CDVAE's split, with an e3nn network in place of GemNet, run as flow matching):

* invariant quantities come from small heads on the latent: the number of atoms (a classifier),
  the composition (for every element a distribution over its count; see :func:`counts_from_log_probs`)
  and, for crystals, the six lattice parameters (lengths scaled by N^(1/3), standardised on the
  training set);
* coordinates come from a latent-conditioned **equivariant velocity field** (tensor-field
  convolutions, output ``1x1o`` per atom). Crystals flow on the torus of fractional coordinates from
  uniform noise to the structure (the Cartesian velocity is mapped through the inverse lattice and
  positions are wrapped into the cell); molecules flow in Cartesian space from centred Gaussian noise.
  Because the field is rotation equivariant and the lattice is built from invariant parameters, the
  decoded structure does not depend on any orientation the network saw in training;
* optionally (``type_head``), which element each site holds: the same field, run blind to the
  species, reads per-site logits from the finished geometry and the latent, and the composition's
  atoms are re-assigned to the sites by them (the flow's atoms carry their species from the first
  step, and on perov-5 one decode in five put the two cations on each other's site).

The neighbour search of the flow is done in torch on the moving positions (:func:`radius_graph`):
it is run at every integration step, so it cannot go through pymatgen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import cast

import numpy as np
import torch
from e3nn import o3
from scipy.optimize import linear_sum_assignment
from torch import nn

from motif_screen import limits
from motif_screen.model.blocks import Interaction, RadialEmbedding, hidden_irreps, sh_parity

__all__ = [
    "DecoderConfig",
    "Decoder",
    "VelocityField",
    "radius_graph",
    "wrap_frac",
    "assign_noise",
    "align_translation",
    "align_rotation",
    "lattice_from_params",
    "params_from_lattice",
    "counts_from_log_probs",
    "best_compositions",
]


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class DecoderConfig:
    """Sizes of the decoder; stored in checkpoints so a model rebuilds itself."""

    latent_dim: int
    elements: list[int]  # atomic numbers the decoder can emit (its species vocabulary)
    periodic: bool = True  # crystals (fractional torus + lattice head) or molecules
    max_atoms: int = 20
    channels: int = 32  # scalar channels of the velocity field (channels/2 vectors, ...)
    lmax: int = 1  # spherical harmonics of edge directions and highest feature order
    num_layers: int = 3
    cutoff: float = 4.5  # Å, neighbour radius of the velocity field
    num_basis: int = 8
    radial_hidden: int = 32
    avg_neighbors: float = 20.0
    mlp_hidden: int = 128
    flow_steps: int = 50  # Euler steps at generation
    molecule_noise: float = 1.0  # Å, std of the Cartesian prior for molecules
    ot_pairing: bool = True  # pair noise and atoms of one species by optimal transport in training
    condition_every_layer: bool = True  # re-inject (species, latent, time) into the scalars before every layer
    # the same field also learns to denoise (structure + Gaussian noise of std <= denoise_sigma_max Å
    # -> displacement back) on denoise_fraction of the training structures; decoding ends with
    # snap_steps of it at decreasing noise levels (0 disables both)
    denoise_sigma_max: float = 0.8
    denoise_fraction: float = 0.25
    snap_steps: int = 5
    candidates: int = 1  # structures decoded per latent; the one the encoder maps closest to it is kept
    # a species head on the same field, blind to the species: it reads which element each decoded
    # site holds from the geometry and the latent, and decoding ends by re-assigning the composition's
    # atoms to the sites by it (the flow alone puts A and B of a perovskite on each other's site in
    # one decode of five)
    type_head: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# geometry helpers (pure functions)
# ---------------------------------------------------------------------------------------------
def wrap_frac(x: torch.Tensor) -> torch.Tensor:
    """Fractional coordinates into [0, 1)."""
    return x - torch.floor(x)


def wrap_delta(d: torch.Tensor) -> torch.Tensor:
    """Shortest periodic difference of fractional coordinates, in [-0.5, 0.5)."""
    return d - torch.round(d)


def lattice_from_params(params: torch.Tensor) -> torch.Tensor:
    """(B, 6) lengths (Å) and angles (degrees) -> (B, 3, 3) lattice rows in pymatgen's orientation."""
    a, b, c = params[:, 0], params[:, 1], params[:, 2]
    alpha, beta, gamma = (torch.deg2rad(params[:, i]) for i in (3, 4, 5))
    cos_a, cos_b, cos_g = torch.cos(alpha), torch.cos(beta), torch.cos(gamma)
    sin_a, sin_b = torch.sin(alpha), torch.sin(beta)
    val = ((cos_a * cos_b - cos_g) / (sin_a * sin_b)).clamp(-1.0, 1.0)
    gamma_star = torch.arccos(val)
    zeros = torch.zeros_like(a)
    va = torch.stack([a * sin_b, zeros, a * cos_b], dim=-1)
    vb = torch.stack([-b * sin_a * torch.cos(gamma_star), b * sin_a * torch.sin(gamma_star), b * cos_a], dim=-1)
    vc = torch.stack([zeros, zeros, c], dim=-1)
    return torch.stack([va, vb, vc], dim=1)


TYPE_NOISE = (0.02, 0.2)  # Å: range of the noise the species head is trained on (decoding reads at the low end)
MIN_VOLUME_FACTOR = 0.05  # V² / (abc)² of the flattest cell a decoder may emit (a cube: 1)


def feasible_angles(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) cell angles (degrees) moved towards 90° just enough that they span a cell: three angles
    each in (0, 180) need not (α + β + γ ≥ 360°, or one larger than the other two together, give no
    cell, and the lattice would be singular). The volume factor 1 − Σcos² + 2Πcos = V² / (abc)² must
    reach ``MIN_VOLUME_FACTOR``; angles that already do are returned unchanged."""

    def factor(x):
        c = torch.cos(torch.deg2rad(x))
        return 1 - (c * c).sum(-1) + 2 * c.prod(-1)

    out = angles.clone()
    bad = factor(out) < MIN_VOLUME_FACTOR
    for shrink in torch.linspace(0.95, 0.0, 20, dtype=angles.dtype).tolist():  # 0: all 90°, a factor of 1
        if not bad.any():
            break
        out[bad] = 90.0 + shrink * (angles[bad] - 90.0)
        bad = factor(out) < MIN_VOLUME_FACTOR
    return out


def params_from_lattice(cell: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) lattice rows -> (B, 6) lengths (Å) and angles (degrees); rotation invariant."""
    lengths = cell.norm(dim=-1)
    a, b, c = cell[:, 0], cell[:, 1], cell[:, 2]

    def angle(u, v):
        cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))
        return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))

    return torch.cat([lengths, torch.stack([angle(b, c), angle(a, c), angle(a, b)], dim=-1)], dim=-1)


def best_compositions(
    log_probs: torch.Tensor, num_atoms: torch.Tensor, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` most probable integer compositions with a given total, exactly, best first.

    ``log_probs`` (B, E, K+1) holds log p(count of element e = c); ``num_atoms`` (B,) the totals.
    Returns counts (B, k, E) and their scores sum_e log p_e(c_e) (B, k), -inf where fewer than k
    compositions exist. A k-best dynamic programme over elements keeps, for every running total,
    the k best partial compositions (O(E N K k) tensor work for the whole batch). Why per-element
    counts rather than one softmax over element fractions: a composition then decodes element by
    element, so the head generalises to element combinations never seen in training (90% of
    perov-5's test formulas are absent from its training split).
    """
    B, E, K1 = log_probs.shape
    device = log_probs.device
    num_atoms = torch.as_tensor(num_atoms, dtype=torch.long, device=device)
    top = int(num_atoms.max()) if B else 0
    n = torch.arange(top + 1, device=device)
    c = torch.arange(K1, device=device)
    source = n[:, None] - c[None, :]  # running total before adding c atoms of this element
    reachable = (source >= 0)[None, :, :, None]
    source = source.clamp(min=0)
    best = torch.full((B, top + 1, k), -torch.inf, dtype=log_probs.dtype, device=device)
    best[:, 0, 0] = 0.0
    choices = []
    for e in range(E):
        candidates = best[:, source, :] + log_probs[:, e, None, :, None]  # (B, N+1, K+1, k)
        candidates = candidates.masked_fill(~reachable, -torch.inf).flatten(2)
        best, choice = candidates.topk(k, dim=-1)  # choice = count * k + rank of the partial
        choices.append(choice)
    rows = torch.arange(B, device=device)[:, None].expand(B, k)
    remaining = num_atoms[:, None].expand(B, k).clone()
    rank = torch.arange(k, device=device)[None].expand(B, k).clone()
    scores = best[rows, remaining, rank]
    counts = torch.zeros(B, k, E, dtype=torch.long, device=device)
    for e in reversed(range(E)):
        choice = choices[e][rows, remaining, rank]
        counts[:, :, e] = choice // k
        rank = choice % k
        remaining = (remaining - counts[:, :, e]).clamp(min=0)  # (only -inf paths would go below 0)
    counts[torch.isinf(scores)] = 0
    return counts, scores


def counts_from_log_probs(log_probs: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
    """(B, E) the most probable integer composition with each total (see :func:`best_compositions`)."""
    return best_compositions(log_probs, num_atoms, 1)[0][:, 0]


def assign_noise(
    noise: torch.Tensor,
    data: torch.Tensor,
    species: torch.Tensor,
    num_nodes: torch.Tensor,
    cell: torch.Tensor | None = None,
) -> torch.Tensor:
    """Permute noise points among atoms of the same species and structure so that the total
    (periodic) squared distance to the data is smallest — optimal-transport pairing, as in
    equivariant flow matching (Klein et al. 2023; Song et al. 2023). With random pairing the
    regression target averages over which equivalent atom goes where (three O of a perovskite);
    with this pairing paths are short and the target is nearly unique, so training is far faster.
    """
    x0, x1 = noise.detach().cpu().numpy(), data.detach().cpu().numpy()
    spec = species.cpu().numpy()
    cells = None if cell is None else cell.detach().cpu().numpy()
    order = np.arange(len(x0))
    start = 0
    for g, n in enumerate(num_nodes.tolist()):
        stop = start + n
        for sp in np.unique(spec[start:stop]):
            idx = start + np.nonzero(spec[start:stop] == sp)[0]
            if len(idx) < 2:
                continue
            diff = x1[idx][:, None, :] - x0[idx][None, :, :]
            if cells is not None:
                diff = (diff - np.round(diff)) @ cells[g]
            cost = (diff**2).sum(-1)
            rows, cols = linear_sum_assignment(cost)
            order[idx[rows]] = idx[cols]
        start = stop
    return noise[torch.as_tensor(order, device=noise.device)]


def align_translation(
    data: torch.Tensor, noise: torch.Tensor, num_nodes: torch.Tensor, cell: torch.Tensor, iterations: int = 3
) -> torch.Tensor:
    """Shift each crystal rigidly (fractional ``data`` (N, 3)) so that its atoms lie closest to their
    noise partners: smallest summed periodic squared distance in Å², over 8 starting shifts refined
    by a few mean-displacement updates.

    Why: a crystal has no preferred origin, but on the torus the shortest path from a noise point to
    an atom depends on where the origin happens to be, so without this the flow's target (even after
    removing its mean) changes with an arbitrary choice and the learned field is a blur of them.
    """
    B = len(num_nodes)
    batch = torch.repeat_interleave(torch.arange(B, device=data.device), num_nodes)
    counts = num_nodes[:, None].to(data.dtype)

    def per_graph(x):
        return torch.zeros(B, x.shape[-1], dtype=x.dtype, device=x.device).index_add_(0, batch, x)

    best_shift = torch.zeros(B, 3, dtype=data.dtype, device=data.device)
    best_cost = torch.full((B,), torch.inf, dtype=data.dtype, device=data.device)
    corners = torch.cartesian_prod(*[torch.tensor([0.0, 0.5], dtype=data.dtype, device=data.device)] * 3)
    for corner in corners:
        shift = corner.expand(B, 3).clone()
        for _ in range(iterations):
            shift = shift - per_graph(wrap_delta(data + shift[batch] - noise)) / counts
        d = torch.einsum("ni,nij->nj", wrap_delta(data + shift[batch] - noise), cell[batch])
        cost = per_graph((d**2).sum(-1, keepdim=True))[:, 0]
        better = cost < best_cost
        best_cost = torch.where(better, cost, best_cost)
        best_shift = torch.where(better[:, None], shift, best_shift)
    return wrap_frac(data + best_shift[batch])


def align_rotation(data: torch.Tensor, noise: torch.Tensor, num_nodes: torch.Tensor) -> torch.Tensor:
    """Rotate each centred molecule (``data`` (N, 3), Å) by the proper rotation that brings its atoms
    closest to their noise partners (Kabsch). The molecule's counterpart of
    :func:`align_translation`: the velocity field is equivariant, so which orientation the data
    has is arbitrary, and aligning it makes the flow's paths short and its targets consistent
    (as in equivariant flow matching, Klein et al. 2023). No reflection: that would swap enantiomers."""
    B = len(num_nodes)
    batch = torch.repeat_interleave(torch.arange(B, device=data.device), num_nodes)
    cov = torch.zeros(B, 3, 3, dtype=data.dtype, device=data.device).index_add_(
        0, batch, data[:, :, None] * noise[:, None, :]
    )
    u, _, vh = torch.linalg.svd(cov)
    det = torch.linalg.det(vh.transpose(1, 2) @ u.transpose(1, 2))
    fix = torch.diag_embed(torch.stack([torch.ones_like(det), torch.ones_like(det), torch.sign(det)], dim=-1))
    rotation = vh.transpose(1, 2) @ fix @ u.transpose(1, 2)  # (B, 3, 3): rotation @ x_data ≈ x_noise
    return torch.einsum("nij,nj->ni", rotation[batch], data)


def _graph_pairs(num_nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All ordered atom pairs (i, j) inside each graph, vectorised: returns (i, j, graph)."""
    device = num_nodes.device
    ptr = torch.cumsum(num_nodes, 0) - num_nodes
    per_graph = num_nodes * num_nodes
    graph = torch.repeat_interleave(torch.arange(len(num_nodes), device=device), per_graph)
    start = torch.cumsum(per_graph, 0) - per_graph
    k = torch.arange(int(per_graph.sum()), device=device) - start[graph]
    n = num_nodes[graph]
    return ptr[graph] + k // n, ptr[graph] + k % n, graph


def radius_graph(
    pos: torch.Tensor,
    num_nodes: torch.Tensor,
    cutoff: float,
    cell: torch.Tensor | None = None,
    max_shift: int = 3,
    undirected: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges within ``cutoff`` (periodic images included when ``cell`` is given).

    Returns ``edge_index`` (2, E) as [source, target] and ``edge_vectors`` (E, 3) =
    r_source + shift·cell − r_target (the convention of :mod:`motif_screen.keys`). Fractional
    differences are first wrapped into [-0.5, 0.5), so image shifts need only reach
    floor(cutoff / thinnest height + 1/2) cells (1 for a 4 Å cell at 4.5 Å: 27 images, not 125),
    capped at ``max_shift``. ``undirected`` returns each edge once — source < target (any image),
    or an atom and its own image with the first non-zero shift component positive — the other
    half being the reverses (target, source, −vector): the edge set is symmetric, so nothing is lost.
    """
    src, dst, graph = _graph_pairs(num_nodes)
    if undirected:
        half = src <= dst
        src, dst, graph = src[half], dst[half], graph[half]
    vec = pos[src] - pos[dst]
    if cell is None:
        keep = (src != dst) & (vec.norm(dim=-1) < cutoff)
        return torch.stack([src[keep], dst[keep]]), vec[keep]
    pair_cell = cell[graph]  # (P, 3, 3)
    with torch.no_grad():
        volume = torch.linalg.det(cell).abs()
        cross = torch.stack(
            [
                torch.cross(cell[:, 1], cell[:, 2], dim=-1),
                torch.cross(cell[:, 2], cell[:, 0], dim=-1),
                torch.cross(cell[:, 0], cell[:, 1], dim=-1),
            ],
            dim=1,
        ).norm(dim=-1)
        heights = volume[:, None] / cross.clamp(min=1e-6)
        reach = int(torch.floor(cutoff / heights.min().clamp(min=1e-3) + 0.5).clamp(max=max_shift).item())
        nearest = torch.round(torch.einsum("px,pxk->pk", vec, torch.linalg.inv(cell)[graph]))
    vec = vec - torch.einsum("pk,pkx->px", nearest, pair_cell)
    rng = torch.arange(-reach, reach + 1, device=pos.device, dtype=pos.dtype)
    shifts = torch.cartesian_prod(rng, rng, rng)  # (S, 3)
    shift_cart = torch.einsum("sk,gkx->gsx", shifts, cell)  # (B, S, 3)
    # |vec + shift|² without building every image vector (P × S × 3): only the kept ones are formed
    with torch.no_grad():
        shift_sq = (shift_cart * shift_cart).sum(-1)  # (B, S)
        along = torch.einsum("pkx,px->pk", pair_cell, vec)  # vec · each cell vector (P, 3)
        dist_sq = (vec * vec).sum(-1)[:, None] + 2 * along @ shifts.T + shift_sq[graph]
        if undirected:  # an atom's own images: one of each ± pair
            first = torch.where(
                shifts[:, 0] != 0, shifts[:, 0], torch.where(shifts[:, 1] != 0, shifts[:, 1], shifts[:, 2])
            )
            self_image = (src == dst)[:, None] & (first <= 0)[None, :]
        else:
            self_image = (src == dst)[:, None] & (shifts.abs().sum(-1) == 0)[None, :]
        pair, image = ((dist_sq < cutoff * cutoff) & ~self_image).nonzero(as_tuple=True)
    return torch.stack([src[pair], dst[pair]]), vec[pair] + shift_cart[graph[pair], image]


# ---------------------------------------------------------------------------------------------
# the equivariant velocity field
# ---------------------------------------------------------------------------------------------
class VelocityField(nn.Module):
    """Latent-conditioned equivariant velocity field: (positions, species, cell, t, latent) -> (N, 3) Å.

    Invariant inputs (species one-hot, latent, time) enter as scalar node features; geometry enters
    only through edge vectors, so the output rotates with the input (``irreps_out = 1x1o``) and is
    unchanged by translations and by lattice-equivalent images.
    """

    sh_parity: torch.Tensor  # buffer (not saved): (−1)^l of each spherical-harmonic component

    def __init__(self, config: DecoderConfig):
        super().__init__()
        c = config
        self.config = c
        self.cutoff = c.cutoff
        self.num_basis = c.num_basis
        self.irreps_sh = o3.Irreps.spherical_harmonics(c.lmax)
        self.sh = o3.SphericalHarmonics(self.irreps_sh, normalize=True, normalization="component")
        self.register_buffer("sh_parity", sh_parity(self.irreps_sh), persistent=False)
        hidden = hidden_irreps(c.channels, c.lmax)
        self.radial = RadialEmbedding(c.cutoff, c.num_basis)
        cond_in = len(c.elements) + c.latent_dim + 16 + (2 if c.denoise_sigma_max > 0 else 0)
        self.embed = nn.Sequential(nn.Linear(cond_in, c.mlp_hidden), nn.SiLU(), nn.Linear(c.mlp_hidden, c.channels))
        irreps = o3.Irreps(f"{c.channels}x0e")
        layers = []
        for _ in range(c.num_layers):
            layer = Interaction(irreps, self.irreps_sh, hidden, c.num_basis, c.radial_hidden, c.avg_neighbors)
            layers.append(layer)
            irreps = layer.irreps_out
        self.layers = nn.ModuleList(layers)
        # per later layer, a linear map of the conditioning MLP's hidden layer onto the scalars:
        # 32 scalar channels cannot carry a 64-d latent, time and species through three layers
        self.conditioning = nn.ModuleList(
            nn.Linear(c.mlp_hidden, c.channels) for _ in range(c.num_layers - 1 if c.condition_every_layer else 0)
        )
        self.readout = o3.Linear(irreps, "1x1o")
        # species logits from the last layer's scalars (scalars come first in the hidden irreps)
        self.type_readout = nn.Linear(c.channels, len(c.elements)) if c.type_head else None
        self.irreps_in = {"pos": "cartesian_points", "latent": None}
        self.irreps_out = o3.Irreps("1x1o")

    @staticmethod
    def time_features(t: torch.Tensor) -> torch.Tensor:
        freqs = torch.arange(1, 9, dtype=t.dtype, device=t.device) * math.pi
        return torch.cat([torch.sin(t[:, None] * freqs), torch.cos(t[:, None] * freqs)], dim=-1)

    def constant_conditioning(
        self, species: torch.Tensor | None, latent: torch.Tensor, num_nodes: torch.Tensor
    ) -> torch.Tensor:
        """(N, mlp_hidden) the species and latent terms of the first conditioning layer, with its bias:
        they do not change while a structure is decoded, so decoding computes them once for all steps.
        ``species`` None: no species term (an all-zero one-hot), what the species head sees."""
        first = cast(nn.Linear, self.embed[0])  # __init__ builds embed as Linear, SiLU, Linear
        n_species = len(self.config.elements)
        batch = torch.repeat_interleave(torch.arange(len(num_nodes), device=latent.device), num_nodes)
        weight = first.weight
        per_graph = latent @ weight[:, n_species : n_species + latent.shape[1]].T
        if species is None:
            return per_graph[batch] + first.bias
        return per_graph[batch] + weight[:, :n_species].T[species] + first.bias  # one-hot rows: a lookup

    def forward(self, pos, species, num_nodes, cell, t, latent, sigma=None, constant=None):
        """pos (N,3) Å; species (N,) vocabulary index; num_nodes (B,); cell (B,3,3) or None;
        t (B,) in [0,1]; latent (B, latent_dim); sigma (B,) Å: > 0 asks for the denoising
        displacement at that noise level instead of the flow's velocity; ``constant``: the
        :meth:`constant_conditioning` of these species and latents, if already computed. Returns (N, 3) Å."""
        return self.readout(self.features(pos, species, num_nodes, cell, t, latent, sigma, constant))

    def species_logits(self, pos, num_nodes, cell, latent, sigma) -> torch.Tensor:
        """(N, E) logits of the element on each site, from the geometry (a structure with noise of
        ``sigma`` (B,) Å) and the latent alone: the field runs blind to the species."""
        if self.type_readout is None:
            raise RuntimeError("this decoder has no species head (type_head: false)")
        ones = torch.ones(len(num_nodes), dtype=pos.dtype, device=pos.device)
        constant = self.constant_conditioning(None, latent, num_nodes)
        x = self.features(pos, None, num_nodes, cell, ones, latent, sigma, constant)
        return self.type_readout(x[:, : self.config.channels])

    def features(self, pos, species, num_nodes, cell, t, latent, sigma=None, constant=None):
        """The last layer's node features (N, hidden irreps) for :meth:`forward`'s inputs.

        The conditioning MLP sees (species one-hot, latent, time features, denoising flag and σ);
        its first layer is applied term by term."""
        batch = torch.repeat_interleave(torch.arange(len(num_nodes), device=pos.device), num_nodes)
        # each edge once (the layers send its message both ways): half the harmonics and radial MLPs
        edge_index, edge_vec = radius_graph(pos, num_nodes, self.cutoff, cell, undirected=True)
        src, dst = edge_index
        length = edge_vec.norm(dim=-1).clamp(min=1e-4)  # two noisy atoms may coincide
        edge_sh = self.sh(edge_vec)
        basis = self.radial(length)
        if constant is None:
            constant = self.constant_conditioning(species, latent, num_nodes)
        parts = [self.time_features(t)]
        if self.config.denoise_sigma_max > 0:
            sigma = torch.zeros_like(t) if sigma is None else sigma
            parts.append(torch.stack([(sigma > 0).to(t.dtype), sigma / self.config.denoise_sigma_max], dim=-1))
        varying = torch.cat(parts, dim=-1)  # per graph
        offset = len(self.config.elements) + latent.shape[1]
        per_graph = varying @ self.embed[0].weight[:, offset : offset + varying.shape[1]].T
        hidden = self.embed[1](constant + per_graph[batch])
        x = self.embed[2](hidden)
        for k, layer in enumerate(self.layers):
            if 0 < k <= len(self.conditioning):  # scalars come first in the hidden irreps
                scalars = self.config.channels
                x = torch.cat([x[:, :scalars] + self.conditioning[k - 1](hidden), x[:, scalars:]], dim=-1)
            x = layer(x, edge_sh, basis, src, dst, self.sh_parity)
        return x


def _graph_mean(x: torch.Tensor, num_nodes: torch.Tensor) -> torch.Tensor:
    batch = torch.repeat_interleave(torch.arange(len(num_nodes), device=x.device), num_nodes)
    sums = torch.zeros(len(num_nodes), x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, batch, x)
    return (sums / num_nodes[:, None].to(x.dtype))[batch]


# ---------------------------------------------------------------------------------------------
# the decoder
# ---------------------------------------------------------------------------------------------
@dataclass
class DecodedBatch:
    """What the decoder produces for B latents; tensors on CPU."""

    num_nodes: torch.Tensor  # (B,)
    species: torch.Tensor  # (N,) vocabulary index
    atomic_numbers: torch.Tensor  # (N,)
    frac_coords: torch.Tensor | None  # (N, 3), crystals
    cell: torch.Tensor | None  # (B, 3, 3), crystals
    positions: torch.Tensor  # (N, 3) Cartesian Å
    trajectory: list = field(default_factory=list)  # Cartesian positions after every step, if kept


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, n_out)
    )


class Decoder(nn.Module):
    """The four heads of the decoder and its flow; see the module docstring."""

    # buffers (register_buffer)
    lattice_mean: torch.Tensor
    lattice_std: torch.Tensor
    element_table: torch.Tensor

    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = config
        c = config
        self.num_atoms_head = _mlp(c.latent_dim, c.mlp_hidden, c.max_atoms + 1)  # class k = k atoms
        # per element, logits over its count 0..max_atoms; linear, because a composition encoded
        # linearly in the latent then decodes element by element (an MLP memorises combinations)
        self.composition_head = nn.Linear(c.latent_dim, len(c.elements) * (c.max_atoms + 1))
        self.lattice_head = _mlp(c.latent_dim, c.mlp_hidden, 6) if c.periodic else None
        # standardisation of (lengths / N^(1/3), angles); set from training data by fit_lattice_scaler
        self.register_buffer("lattice_mean", torch.tensor([4.0, 4.0, 4.0, 90.0, 90.0, 90.0]))
        self.register_buffer("lattice_std", torch.tensor([1.0, 1.0, 1.0, 10.0, 10.0, 10.0]))
        self.register_buffer("element_table", torch.tensor(c.elements, dtype=torch.long))
        self.velocity = VelocityField(c)

    # -- vocabulary -----------------------------------------------------------------------------
    def species_index(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        lookup = torch.full((int(self.element_table.max()) + 1,), -1, dtype=torch.long, device=atomic_numbers.device)
        lookup[self.element_table] = torch.arange(len(self.element_table), device=atomic_numbers.device)
        idx = lookup[atomic_numbers.clamp(max=len(lookup) - 1)]
        idx[atomic_numbers >= len(lookup)] = -1
        return idx

    # -- lattice scaling ------------------------------------------------------------------------
    def _scaled_lattice_params(self, cell: torch.Tensor, num_nodes: torch.Tensor) -> torch.Tensor:
        p = params_from_lattice(cell)
        p = torch.cat([p[:, :3] / num_nodes[:, None].to(p.dtype) ** (1 / 3), p[:, 3:]], dim=-1)
        return p

    def fit_lattice_scaler(self, cell: torch.Tensor, num_nodes: torch.Tensor) -> None:
        p = self._scaled_lattice_params(cell, num_nodes)
        self.lattice_mean.copy_(p.mean(0))
        self.lattice_std.copy_(p.std(0).clamp(min=1e-2) if len(p) > 1 else torch.ones(6))

    def predict_lattice(self, latent: torch.Tensor, num_nodes: torch.Tensor) -> torch.Tensor:
        assert self.lattice_head is not None  # crystals only: a periodic decoder has a lattice head
        p = self.lattice_head(latent) * self.lattice_std + self.lattice_mean
        lengths = p[:, :3].clamp(min=0.5) * num_nodes[:, None].to(p.dtype) ** (1 / 3)
        angles = feasible_angles(p[:, 3:].clamp(30.0, 150.0))
        return lattice_from_params(torch.cat([lengths, angles], dim=-1))

    # -- composition ----------------------------------------------------------------------------
    def composition_log_probs(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, E, max_atoms + 1) log-probabilities of each element's count."""
        logits = self.composition_head(latent).view(len(latent), len(self.config.elements), self.config.max_atoms + 1)
        return logits.log_softmax(-1)

    def composition_loss(self, latent: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the true per-element counts (B, E), per atom (so its scale
        does not grow with the size of the element vocabulary)."""
        log_probs = self.composition_log_probs(latent)
        target = counts.clamp(max=self.config.max_atoms)
        nll = -log_probs.gather(-1, target[..., None]).squeeze(-1).sum(-1)
        return (nll / counts.sum(-1).clamp(min=1).to(nll.dtype)).mean()

    # -- training losses ------------------------------------------------------------------------
    def losses(self, latent, species, num_nodes, pos, cell=None, generator=None) -> dict:
        """Per-term losses for a batch of true structures (teacher forcing: true N, species, lattice)."""
        c = self.config
        B = len(num_nodes)
        out = {"num_atoms": nn.functional.cross_entropy(self.num_atoms_head(latent), num_nodes.clamp(max=c.max_atoms))}
        batch = torch.repeat_interleave(torch.arange(B, device=latent.device), num_nodes)
        counts = torch.zeros(B, len(c.elements), dtype=torch.long, device=latent.device)
        counts.index_put_((batch, species), torch.ones_like(species), accumulate=True)
        out["composition"] = self.composition_loss(latent, counts)
        t = torch.rand(B, generator=generator, dtype=latent.dtype).to(latent.device)
        if c.periodic:
            assert self.lattice_head is not None  # built whenever c.periodic
            target_scaled = (self._scaled_lattice_params(cell, num_nodes) - self.lattice_mean) / self.lattice_std
            out["lattice"] = nn.functional.mse_loss(self.lattice_head(latent), target_scaled)
            frac1 = wrap_frac(torch.linalg.solve(cell[batch].transpose(1, 2), pos[..., None])[..., 0])
            frac0 = torch.rand(frac1.shape, generator=generator, dtype=pos.dtype).to(pos.device)
            if c.ot_pairing:
                frac0 = assign_noise(frac0, frac1, species, num_nodes, cell)
            frac1 = align_translation(frac1, frac0, num_nodes, cell)
            if c.ot_pairing:  # pair again at the aligned origin
                frac0 = assign_noise(frac0, frac1, species, num_nodes, cell)
            delta = wrap_delta(frac1 - frac0)
            frac_t = wrap_frac(frac0 + t[batch, None] * delta)
            pos_t = torch.einsum("ni,nij->nj", frac_t, cell[batch])
            target = torch.einsum("ni,nij->nj", delta, cell[batch])
        else:
            x1 = pos - _graph_mean(pos, num_nodes)
            x0 = torch.randn(x1.shape, generator=generator, dtype=pos.dtype).to(pos.device) * c.molecule_noise
            x0 = x0 - _graph_mean(x0, num_nodes)
            if c.ot_pairing:
                x0 = assign_noise(x0, x1, species, num_nodes)
            x1 = align_rotation(x1, x0, num_nodes)
            if c.ot_pairing:  # pair again in the aligned orientation
                x0 = assign_noise(x0, x1, species, num_nodes)
            pos_t = x0 + t[batch, None] * (x1 - x0)
            target = x1 - x0
        sigma = torch.zeros_like(t)
        if c.denoise_sigma_max > 0:
            # some structures become denoising examples: the true structure plus Gaussian noise of a
            # log-uniform std in [σmax/30, σmax]; the target is the displacement back to it
            chosen = torch.rand(B, generator=generator, dtype=t.dtype).to(t.device) < c.denoise_fraction
            u = torch.rand(B, generator=generator, dtype=t.dtype).to(t.device)
            sigma = torch.where(chosen, c.denoise_sigma_max * 30.0 ** (u - 1.0), sigma)
            eps = torch.randn(pos.shape, generator=generator, dtype=pos.dtype).to(pos.device)
            noisy = chosen[batch, None]
            pos_t = torch.where(noisy, pos + sigma[batch, None] * eps, pos_t)
            target = torch.where(noisy, -sigma[batch, None] * eps, target)
            t = torch.where(chosen, torch.ones_like(t), t)
        # the structure is defined up to a translation: compare velocities without their mean
        target = target - _graph_mean(target, num_nodes)
        pred = self.velocity(pos_t, species, num_nodes, cell if c.periodic else None, t, latent, sigma)
        pred = pred - _graph_mean(pred, num_nodes)
        error = ((pred - target) ** 2).sum(-1)
        flow_atoms = (sigma == 0)[batch]
        out["coords"] = error[flow_atoms].mean() if bool(flow_atoms.any()) else error.sum() * 0.0
        if c.denoise_sigma_max > 0:  # in units of the noise (ε-prediction), so small σ counts as much as large
            scaled = (error / sigma[batch].clamp(min=1e-6) ** 2)[~flow_atoms]
            out["denoise"] = scaled.mean() if len(scaled) else error.sum() * 0.0
        if c.type_head:
            out["types"] = self.types_loss(latent, species, num_nodes, pos, cell if c.periodic else None, generator)
        return out

    def types_loss(self, latent, species, num_nodes, pos, cell=None, generator=None) -> torch.Tensor:
        """Cross-entropy of the species head, over each structure's own elements, on true structures with
        Gaussian noise of a log-uniform std in ``TYPE_NOISE`` Å: the near-finished geometry decoding
        re-assigns species on."""
        B = len(num_nodes)
        batch = torch.repeat_interleave(torch.arange(B, device=pos.device), num_nodes)
        u = torch.rand(B, generator=generator, dtype=pos.dtype).to(pos.device)
        low, high = TYPE_NOISE
        sigma = low * (high / low) ** u
        eps = torch.randn(pos.shape, generator=generator, dtype=pos.dtype).to(pos.device)
        logits = self.velocity.species_logits(pos + sigma[batch, None] * eps, num_nodes, cell, latent, sigma)
        # over the structure's own elements only: decoding assigns among those (the composition is known)
        present = torch.zeros(B, logits.shape[1], dtype=torch.bool, device=logits.device)
        present[batch, species] = True
        return nn.functional.cross_entropy(logits.masked_fill(~present[batch], -torch.inf), species)

    @torch.no_grad()
    def assign_species(self, pos, species, num_nodes, cell, latent) -> torch.Tensor:
        """``species`` (N,) re-assigned among each structure's own sites: the composition stays, and
        which site holds which of its atoms is the most probable assignment under the species head
        (Hungarian on −log p, per structure)."""
        B = len(num_nodes)
        sigma = torch.full((B,), TYPE_NOISE[0], dtype=pos.dtype, device=pos.device)
        log_p = torch.log_softmax(self.velocity.species_logits(pos, num_nodes, cell, latent, sigma), dim=-1).cpu()
        out = species.clone()
        start = 0
        for n in num_nodes.tolist():
            own = species[start : start + n].cpu()
            rows, cols = linear_sum_assignment(-log_p[start : start + n][:, own].numpy())
            out[start + torch.as_tensor(rows, device=species.device)] = own[torch.as_tensor(cols)].to(species.device)
            start += n
        return out

    # -- generation -----------------------------------------------------------------------------
    def snap_sigmas(self) -> list[float]:
        """Noise levels (Å) of the denoising steps that end decoding: geometric from σmax/2 down to
        σmax/30, the smallest level trained. Each step moves atoms onto the structure the denoiser
        expects, which takes off the residual error the flow's Euler steps leave (atoms caught
        between two sites)."""
        c = self.config
        if c.denoise_sigma_max <= 0 or c.snap_steps <= 0:
            return []
        if c.snap_steps == 1:
            return [c.denoise_sigma_max / 30.0]
        return [float(x) for x in np.geomspace(c.denoise_sigma_max / 2.0, c.denoise_sigma_max / 30.0, c.snap_steps)]

    @torch.no_grad()
    def predict_counts(
        self,
        latent: torch.Tensor,
        num_atoms: list[int] | None = None,
        allowed: torch.Tensor | None = None,
        required: torch.Tensor | None = None,
        accept: Callable[[list[int]], bool] | None = None,
        search: int = 32,
    ) -> list[list[int]]:
        """Number of atoms and per-element counts for each latent. ``allowed`` (E,) bool keeps the
        other elements at zero; ``required`` (E,) bool gives each of those elements at least one atom
        (the size grows if it must). ``accept`` (counts over the vocabulary -> bool) takes the most
        probable of the ``search`` best compositions it accepts (the most probable one if it
        accepts none, so the validity check still reports it). The decoder knows no chemistry:
        generation passes its rules (charge balance, valences) as ``accept``."""
        if num_atoms is None:
            logits = self.num_atoms_head(latent)
            logits[:, 0] = -torch.inf
            num_atoms = logits.argmax(-1).tolist()
        log_probs = self.composition_log_probs(latent).clone()
        if allowed is not None:
            log_probs[:, ~allowed.to(log_probs.device), 1:] = -torch.inf
        if required is not None:
            log_probs[:, required.to(log_probs.device), 0] = -torch.inf
            num_atoms = [max(int(n), int(required.sum())) for n in num_atoms]
        totals = torch.as_tensor(num_atoms)
        counts = counts_from_log_probs(log_probs, totals).tolist()
        if accept is None:
            return counts
        redo = [i for i, row in enumerate(counts) if not accept(row)]  # most pass already: search only these
        if redo:
            options, scores = best_compositions(log_probs[redo], totals[redo], search)
            for i, rows, row_scores in zip(redo, options.tolist(), scores.tolist()):
                counts[i] = next(
                    (row for row, score in zip(rows, row_scores) if math.isfinite(score) and accept(row)), counts[i]
                )
        return counts

    @torch.no_grad()
    def decode(
        self,
        latent: torch.Tensor,
        counts: list[list[int]] | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        keep_trajectory: bool = False,
        cell: torch.Tensor | None = None,
    ) -> DecodedBatch:
        """Decode latents (B, D) into structures; ``counts`` fixes the composition per latent and
        ``cell`` (B, 3, 3) the lattice (crystal structure prediction for a known cell)."""
        c = self.config
        steps = c.flow_steps if steps is None else int(limits.FLOW_STEPS.check(steps, "flow steps"))
        if counts is None:
            counts = self.predict_counts(latent)
        species = torch.cat(
            [
                torch.repeat_interleave(torch.arange(len(c.elements)), torch.tensor(cs, dtype=torch.long))
                for cs in counts
            ]
        ).to(latent.device)
        num_nodes = torch.tensor([sum(cs) for cs in counts], dtype=torch.long, device=latent.device)
        batch = torch.repeat_interleave(torch.arange(len(counts), device=latent.device), num_nodes)
        dtype = latent.dtype
        B = len(counts)
        if c.periodic:
            cell = self.predict_lattice(latent, num_nodes) if cell is None else cell.to(dtype)
            inv = torch.linalg.inv(cell)
            frac = torch.rand((len(species), 3), generator=generator, dtype=dtype).to(latent.device)
            pos = torch.einsum("ni,nij->nj", frac, cell[batch])
        else:
            cell = None
            pos = torch.randn((len(species), 3), generator=generator, dtype=dtype).to(latent.device) * c.molecule_noise
            pos = pos - _graph_mean(pos, num_nodes)

        def move(pos, displacement):
            """Positions plus a displacement without net translation, wrapped into the cell."""
            pos = pos + displacement - _graph_mean(displacement, num_nodes)
            if cell is None:
                return pos
            return torch.einsum("ni,nij->nj", wrap_frac(torch.einsum("ni,nij->nj", pos, inv[batch])), cell[batch])

        trajectory = []
        constant = self.velocity.constant_conditioning(species, latent, num_nodes)
        for k in range(steps):
            t = torch.full((B,), k / steps, dtype=dtype, device=latent.device)
            pos = move(pos, self.velocity(pos, species, num_nodes, cell, t, latent, constant=constant) / steps)
            if keep_trajectory:
                trajectory.append(pos.clone())
        ones = torch.ones(B, dtype=dtype, device=latent.device)
        sigmas = self.snap_sigmas()
        for sigma in sigmas:
            pos = move(pos, self.velocity(pos, species, num_nodes, cell, ones, latent, ones * sigma, constant=constant))
            if keep_trajectory:
                trajectory.append(pos.clone())
        if c.type_head:  # which site holds which atom, read from the finished geometry; then one snap more
            species = self.assign_species(pos, species, num_nodes, cell, latent)
            if sigmas:
                constant = self.velocity.constant_conditioning(species, latent, num_nodes)
                last = ones * sigmas[-1]
                pos = move(pos, self.velocity(pos, species, num_nodes, cell, ones, latent, last, constant=constant))
        final_frac = None if cell is None else wrap_frac(torch.einsum("ni,nij->nj", pos, inv[batch]))
        return DecodedBatch(
            num_nodes=num_nodes.cpu(),
            species=species.cpu(),
            atomic_numbers=self.element_table[species].cpu(),
            frac_coords=None if final_frac is None else final_frac.cpu(),
            cell=None if cell is None else cell.cpu(),
            positions=pos.cpu(),
            trajectory=trajectory,
        )
