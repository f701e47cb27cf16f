"""What the campaign asks of its model: load a version, propose, predict, fine-tune and register.

The model is the structure autoencoder (encoder -> latent -> property heads and decoder) stored
as a ``ModelVersion`` in MongoDB. Loading is cached per process by (name, version), so the many
Firetasks a worker runs do not reload weights, while a newly promoted version is picked up.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
_cache: dict[tuple[str, int], object] = {}


def campaign_model(repo, spec):
    """(model, version) for the campaign: its pinned version, else the latest promoted one."""
    from motif_screen.training.registry import load_model_version

    version = repo.model_version(spec.model.name, spec.model.version).version
    key = (spec.model.name, version)
    if key not in _cache:
        model = load_model_version(spec.model.name, version)
        model.eval()
        _cache[key] = model
    return _cache[key], version


def check_model(repo, spec) -> int:
    """Load the campaign's model once and check it can predict the target; returns its version.

    Run before a campaign is stored, so a corrupt checkpoint or a model without the head the target
    needs is one clear error instead of a Firework that fizzles later.
    """
    from motif_screen.errors import InputError

    model, version = campaign_model(repo, spec)
    check_family(model, f"model {spec.model.name} v{version}", spec.generation.mode)
    learned = spec.target.learned_property
    predicted = list(getattr(model.config, "properties", None) or [])
    if learned not in predicted:
        raise InputError(
            f"model {spec.model.name} v{version} predicts {', '.join(predicted) or 'no property'}, not {learned}, "
            f"which a {spec.target.property} campaign ranks by: train a model with a {learned} head "
            "(`motif-screen train`) and name it with --model"
        )
    return version


def check_family(model, label: str, mode: str) -> None:
    """Refuse, in one message, a model whose family the campaign cannot use: a molecule model (the
    oracles relax crystals), or the ABX3 ``family`` mode with a model of another crystal family."""
    from motif_screen.errors import InputError
    from motif_screen.generation.families import abx3_formulas

    if not model.config.periodic:
        raise InputError(f"{label} decodes molecules; a campaign screens crystals: name a crystal model with --model")
    if mode != "family":
        return
    try:
        abx3_formulas(tuple(model.config.elements))
    except InputError as exc:
        from pymatgen.core import Element

        symbols = " ".join(Element.from_Z(z).symbol for z in model.config.elements)
        raise InputError(
            f"{label} ({symbols}) cannot make ABX3 perovskites, which generation mode 'family' proposes ({exc}): "
            "use --generation prior (in a spec: generation: {mode: prior}), where the decoder picks size and "
            "composition"
        ) from None


@dataclass
class Proposal:
    structure: object
    mode: str
    parents: tuple
    latent: list


CHUNK_SEED_STRIDE = 1_000_003  # chunk k of a round draws from seed + k·stride (chunk 0: the round's own seed)


def propose(model, spec, round_index: int, seeds: list, chunk: int = 0) -> tuple[list[Proposal], dict]:
    """Chunk ``chunk`` of the round's structures from the generation mode; exploration seeds later on.

    Every decoded structure is proposed, valid or not: the pre-screen records why it is rejected.
    A chunk depends only on (campaign seed, round, chunk), never on which shard computes it.
    """
    from motif_screen import generation
    from motif_screen.generation import families

    n = spec.chunk_sizes()[chunk]
    seed = spec.seed * 1000 + round_index + CHUNK_SEED_STRIDE * chunk
    target, gen = spec.target, spec.generation
    decoding = {"steps": gen.flow_steps, "candidates": gen.decode_candidates}
    if seeds and gen.mode == "family":
        out = families.substitute_around(
            model, [s for _, s in seeds], n=n, scale=gen.scale, seed=seed, names=[pid for pid, _ in seeds], **decoding
        )
    elif seeds:
        out = generation.perturb(
            model,
            [s for _, s in seeds],
            n=n,
            scale=gen.scale,
            seed=seed,
            names=[pid for pid, _ in seeds],
            charge_balanced=gen.charge_balanced,
            **decoding,
        )
    elif gen.mode == "family":
        out = families.sample_family(model, n=n, seed=seed, **decoding)
    elif gen.mode == "guided":
        goal = target.goal if target.goal != "range" else (target.lower + target.upper) / 2
        out = generation.guided(
            model,
            n=n,
            target=target.learned_property,
            goal=goal,
            seed=seed,
            charge_balanced=gen.charge_balanced,
            **decoding,
        )
    elif gen.mode == "constrained":
        out = generation.constrained(model, n=n, composition=target.composition, seed=seed, **decoding)
    else:
        out = generation.sample_prior(model, n=n, seed=seed, charge_balanced=gen.charge_balanced, **decoding)
    proposals = [Proposal(g.structure, g.mode, tuple(g.parents), list(g.latent)) for g in out.structures]
    report = {"decoded_valid": len(out.valid), **{f"decoded_{k}": v for k, v in out.failure_counts.items()}}
    report.update({f"formulas_{k}": v for k, v in out.formula_rules.items()})  # family modes: what each rule kept
    return proposals, report


def predict(model, structures) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """property -> (mean, std) arrays for pymatgen structures."""
    import torch

    with torch.no_grad():
        latent = model.encode(list(structures))
        preds = model.predict_properties(latent)
    return {k: (m.detach().cpu().numpy(), s.detach().cpu().numpy()) for k, (m, s) in preds.items()}


def _mae(model, structures, values, prop) -> float:
    mean, _ = predict(model, structures)[prop]
    return float(np.mean(np.abs(mean - values)))


def retrain_and_register(model, version: int, spec, structures: list, values: np.ndarray, round_index: int) -> dict:
    """Fine-tune the target head on oracle results; register; promote only if it beats the parent.

    A quarter of the results (at least one) is held out; both models are scored on it, so the
    promotion decision compares like with like.
    """
    import copy

    from motif_screen.model.checkpoint import save_checkpoint
    from motif_screen.training.finetune import fine_tune_heads
    from motif_screen.training.fingerprint import data_fingerprint
    from motif_screen.training.registry import register_model_version

    prop = spec.target.learned_property
    rng = np.random.default_rng(spec.seed * 1000 + round_index)
    order = rng.permutation(len(structures))
    n_val = max(1, len(structures) // 4)
    val, train = order[:n_val], order[n_val:]
    val_s, val_y = [structures[i] for i in val], values[val]
    parent_mae = _mae(model, val_s, val_y, prop)
    new = copy.deepcopy(model)
    fine_tune_heads(
        new,
        [structures[i] for i in train],
        {prop: values[train]},
        epochs=spec.retrain_epochs,
        seed=spec.seed + round_index,
    )
    new.eval()
    new_mae = _mae(new, val_s, val_y, prop)
    promoted = new_mae < parent_mae
    metrics = {
        f"{prop}_val_mae": new_mae,
        f"{prop}_parent_val_mae": parent_mae,
        "n_train": int(len(train)),
        "n_val": int(n_val),
        "round": round_index,
        "source": spec.oracle,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        save_checkpoint(
            path,
            new,
            config={"fine_tuned_from": version, "campaign": spec.name},
            metrics=metrics,
            data_fingerprint=data_fingerprint(structures, {prop: values}),
        )
        doc = register_model_version(
            spec.model.name,
            path,
            parent=version,
            metrics=metrics,
            data_fingerprint=data_fingerprint(structures, {prop: values}),
            config={"campaign": spec.name, "round": round_index},
            promoted=promoted,
        )
    log.info(
        "retrained %s v%d -> v%d: val MAE %.3f -> %.3f (%s)",
        spec.model.name,
        version,
        doc.version,
        parent_mae,
        new_mae,
        "promoted" if promoted else "kept parent",
    )
    return {"retrained": True, "version": doc.version, "parent": version, "promoted": promoted, **metrics}
