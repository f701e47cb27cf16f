"""Per-edge messages of a tensor-field convolution, written out path by path for CPU speed.

Why this exists: e3nn's generated code for a per-edge ("uvu", ``shared_weights=False``)
``o3.TensorProduct`` also builds the full outer products x ⊗ Y of every path and then discards
them, and runs each path as a batched einsum over tiny matrices; with lmax 1 that is ~10× the
arithmetic the messages need and most of the encoder's time. The filter Y(r̂) has one copy of
each l (multiplicity 1), so every path is an elementwise product with a known Clebsch–Gordan
structure: this module computes exactly the same numbers (to float round-off) with plain
elementwise kernels, and folds every constant (path weights, 1/sqrt(2l+1), e3nn's MLP
normalisations) into the small radial-MLP weight matrices instead of into per-edge tensors.

The e3nn modules stay the reference and the owners of the parameters (names, shapes and
checkpoints unchanged); :func:`plan_paths` returns ``None`` for tensor products it does not
cover, and callers then use e3nn directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from e3nn import o3

# how a path contracts x (l1) with the filter Y (l2) into the output (l3)
SCALAR_INPUT = "l1=0"  # out_k = x · Y_k
SCALAR_FILTER = "l2=0"  # out_k = x_k · Y
SCALAR_OUTPUT = "l3=0"  # out = Σ_i x_i · Y_i
GENERAL = "general"  # out_k = Σ_ij C_ijk x_i Y_j


@dataclass(frozen=True)
class Path:
    kind: str
    x: slice  # columns of the node features (mul × dim1)
    mul: int
    dim1: int
    y: slice  # columns of the spherical harmonics (dim2)
    w: slice  # columns of the per-edge weights (mul)
    out: int  # index of the output irrep it adds to
    dim3: int
    w3j: torch.Tensor | None  # (dim1, dim2, dim3) for GENERAL paths only


@dataclass(frozen=True)
class PathPlan:
    paths: tuple[Path, ...]
    weight_scale: torch.Tensor  # (weight_numel,) float64: every constant of every path
    out_dims: tuple[int, ...]  # mul × dim of each output irrep, in order
    out_offsets: tuple[int, ...]  # first column of each output irrep (and the total, last)
    in_to_component_major: torch.Tensor  # column permutation: e3nn layout -> component-major
    out_to_e3nn: torch.Tensor  # column permutation: component-major -> e3nn layout


def component_major(irreps: o3.Irreps) -> tuple[torch.Tensor, torch.Tensor]:
    """Column permutations between e3nn's layout (each irrep block as [channel][component]) and
    a component-major one ([component][channel]).

    Why: per-edge products then broadcast over the long, contiguous channel axis instead of an
    axis of 3 or 5 components, which vectorises far better on CPU; the permutations themselves
    are applied per node (before the gather, after the sum), ~20× fewer rows than edges.
    Returns (to_component_major, to_e3nn): ``x[:, to_component_major]`` and its inverse.
    """
    forward, offset = [], 0
    for mul, ir in irreps:
        forward += [offset + u * ir.dim + m for m in range(ir.dim) for u in range(mul)]
        offset += mul * ir.dim
    forward_t = torch.tensor(forward, dtype=torch.long)
    inverse = torch.empty_like(forward_t)
    inverse[forward_t] = torch.arange(len(forward))
    return forward_t, inverse


def plan_paths(tp: o3.TensorProduct) -> PathPlan | None:
    """The path-by-path plan of an e3nn per-edge uvu tensor product, or ``None`` if not covered.

    Covered: every instruction "uvu" with a weight, weights given per edge, the second input
    (the spherical harmonics) with multiplicity 1 everywhere.
    """
    if tp.shared_weights or tp.internal_weights:
        return None
    slices1, slices2 = tp.irreps_in1.slices(), tp.irreps_in2.slices()
    scale = torch.ones(tp.weight_numel, dtype=torch.float64)
    paths, offset = [], 0
    for ins in tp.instructions:
        mul1, ir1 = tp.irreps_in1[ins.i_in1]
        mul2, ir2 = tp.irreps_in2[ins.i_in2]
        mul3, ir3 = tp.irreps_out[ins.i_out]
        if ins.connection_mode != "uvu" or not ins.has_weight or mul2 != 1 or mul3 != mul1:
            return None
        if mul1 == 0:
            continue
        w3j = None
        # e3nn's own specialised constants: W3j(0,l,l) and W3j(l,0,l) are 1/sqrt(2l+1) times
        # the identity, W3j(l,l,0) is 1/sqrt(2l+1) times the identity
        if ir1.l == 0:
            kind, const = SCALAR_INPUT, 1.0 / math.sqrt(ir3.dim)
        elif ir2.l == 0:
            kind, const = SCALAR_FILTER, 1.0 / math.sqrt(ir3.dim)
        elif ir3.l == 0:
            kind, const = SCALAR_OUTPUT, 1.0 / math.sqrt(ir1.dim)
        else:
            kind, const = GENERAL, 1.0
            w3j = o3.wigner_3j(ir1.l, ir2.l, ir3.l, dtype=torch.float64)
        scale[offset : offset + mul1] = ins.path_weight * const
        paths.append(
            Path(
                kind,
                slices1[ins.i_in1],
                mul1,
                ir1.dim,
                slices2[ins.i_in2],
                slice(offset, offset + mul1),
                ins.i_out,
                ir3.dim,
                w3j,
            )
        )
        offset += mul1
    if offset != tp.weight_numel:
        return None
    out_dims = tuple(mul * ir.dim for mul, ir in tp.irreps_out)
    return PathPlan(
        tuple(paths),
        scale,
        out_dims,
        tuple(int(x) for x in np.cumsum((0,) + out_dims)),
        component_major(tp.irreps_in1)[0],
        component_major(tp.irreps_out)[1],
    )


def messages(plan: PathPlan, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(E, dim_out) tensor product of x (E, dim1) and y (E, dim2) with weights already scaled.

    Component-major layouts in and out (see :func:`component_major`): ``x`` is
    ``x_e3nn[:, plan.in_to_component_major]`` and ``result[:, plan.out_to_e3nn]`` is e3nn's
    layout. ``w`` must include ``plan.weight_scale`` (see :func:`fold_mlp`): then the result
    equals ``tp(x_e3nn, y, w_unscaled)``. ``y`` are e3nn spherical harmonics in "component"
    normalisation, whose l = 0 component is the constant 1: paths through it skip the product.
    Each path writes into its columns of one output tensor (no concatenation pass).
    """
    n = x.shape[0]
    # autograd cannot record out= products; training accumulates into zeros instead (also exact)
    recorded = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad or w.requires_grad)
    out = x.new_zeros(n, plan.out_offsets[-1]) if recorded else x.new_empty(n, plan.out_offsets[-1])
    written = [recorded] * len(plan.out_dims)
    for p in plan.paths:
        ww = w[:, p.w]
        dest = out[:, plan.out_offsets[p.out] : plan.out_offsets[p.out + 1]].view(n, p.dim3, p.mul)
        add, written[p.out] = written[p.out], True
        # products as (E, mul) factor pairs, one per output component: torch's broadcasting over a
        # middle axis of 3 runs ~2× slower than three plain row-wise products
        if p.kind == SCALAR_INPUT and p.dim3 == 1:  # Y0 = 1: out = w x
            pairs = [(ww, x[:, p.x])]
        elif p.kind == SCALAR_INPUT:  # out_k = (w x) Y_k
            wx, ys = ww * x[:, p.x], y[:, p.y]
            pairs = [(wx, ys[:, k : k + 1]) for k in range(p.dim3)]
        elif p.kind == SCALAR_FILTER:  # Y0 = 1: out_k = w x_k
            xs = x[:, p.x]
            pairs = [(xs[:, k * p.mul : (k + 1) * p.mul], ww) for k in range(p.dim1)]
        elif p.kind == SCALAR_OUTPUT:  # Σ_i x_i Y_i over contiguous channel rows
            xs, ys = x[:, p.x], y[:, p.y]
            acc = xs[:, : p.mul] * ys[:, 0:1]
            for i in range(1, p.dim1):
                acc.addcmul_(xs[:, i * p.mul : (i + 1) * p.mul], ys[:, i : i + 1])
            pairs = [(acc, ww)]
        else:  # contract Y with the Clebsch–Gordan block first: (E, dim3, dim1), then batch-multiply
            assert p.w3j is not None  # plan_paths sets it on every GENERAL path
            c = p.w3j.to(dtype=y.dtype, device=y.device)  # (dim1, dim2, dim3)
            filt = (y[:, p.y] @ c.permute(1, 2, 0).reshape(c.shape[1], -1)).reshape(n, p.dim3, p.dim1)
            product = torch.bmm(filt, x[:, p.x].reshape(n, p.dim1, p.mul))
            pairs = [(product[:, k], ww) for k in range(p.dim3)]
        for k, (a, b) in enumerate(pairs):
            if add:
                dest[:, k].addcmul_(a, b)
            else:
                torch.mul(a, b, out=dest[:, k])
    for k, done in enumerate(written):
        if not done:
            out[:, plan.out_offsets[k] : plan.out_offsets[k + 1]] = 0
    return out


def fold_mlp(net, out_scale: torch.Tensor | None):
    """e3nn ``FullyConnectedNet`` times ``out_scale`` per output column, as a function of x, constants folded.

    e3nn divides every weight matrix by sqrt(fan-in) and multiplies every activation by a
    normalisation constant at run time, each a pass over an (E, hidden) tensor; here they are
    folded into the (small) weight matrices once per call of this function (call it once per
    forward pass, then apply the result to every chunk of edges), which changes only float round-off.
    """
    layers = [getattr(net, f"layer{i}") for i in range(len(net.hs) - 1)]
    steps = []  # (weight, activation or None)
    carry = 1.0  # constant multiplying the current activations, pushed into the next matrix
    for i, layer in enumerate(layers):
        if layer.act is not None:
            weight = layer.weight * (carry / math.sqrt(layer.h_in * layer.var_in))
            act = layer.act
            if getattr(act, "_is_id", True) or not hasattr(act, "cst"):
                f = act if not hasattr(act, "f") else act.f
                carry = math.sqrt(layer.var_out)
            else:
                f = act.f
                carry = act.cst * math.sqrt(layer.var_out)
            steps.append((weight, f))
        else:
            weight = layer.weight * (carry / math.sqrt(layer.h_in * layer.var_in / layer.var_out))
            if i == len(layers) - 1 and out_scale is not None:
                weight = (weight.double() * out_scale.to(weight.device)).to(weight.dtype)
            steps.append((weight, None))
            carry = 1.0
    last_activated = bool(layers) and layers[-1].act is not None
    tail = None
    if carry != 1.0 or (last_activated and out_scale is not None):
        tail = torch.full((), carry, dtype=torch.float64)
        if last_activated and out_scale is not None:
            tail = tail * out_scale  # (no folding when the last layer is activated)

    def apply(x: torch.Tensor) -> torch.Tensor:
        for weight, f in steps:
            x = x @ weight.to(x.dtype)
            if f is not None:
                x = f(x)
        return x if tail is None else x * tail.to(dtype=x.dtype, device=x.device)

    return apply
