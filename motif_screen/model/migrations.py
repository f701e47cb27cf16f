"""Checkpoint format versions, and the migrations that bring an older checkpoint to the current one.

A checkpoint records ``format_version``. When what a checkpoint must hold changes, the version goes
up by one and a function here turns a payload of the previous version into one of the new version;
:func:`migrate` applies them in order when a checkpoint is read, so model classes only ever see the
current format and carry no compatibility code.

Versions:

1. The first format. An autoencoder's ``model_config["decoder"]`` named only the decoder options its
   recipe set (checkpoints written before 2026-11-30), and its latent prior was one Gaussian
   (``prior_mean`` / ``prior_scale_tril`` in the state dict) until the Gaussian mixture came.
2. An autoencoder's ``model_config["decoder"]`` names every decoder option and its state dict holds
   the mixture prior (``prior_weights`` / ``prior_means`` / ``prior_scale_trils``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from motif_screen.errors import ModelError

__all__ = ["FORMAT_VERSION", "MIGRATIONS", "V1_DECODER_OPTIONS", "migrate"]

FORMAT_VERSION = 2

# The decoder a format-1 autoencoder was built with, for every option its checkpoint leaves out.
# Checkpoints that name no option predate the per-layer conditioning and the denoiser, so those
# two are off; the others are the values the decoder had then. Frozen here: later changes of the
# decoder's defaults must not change how an old checkpoint is rebuilt.
V1_DECODER_OPTIONS = {
    "max_atoms": 20,
    "channels": 32,
    "lmax": 1,
    "num_layers": 3,
    "cutoff": 4.5,
    "num_basis": 8,
    "radial_hidden": 32,
    "avg_neighbors": 20.0,
    "mlp_hidden": 128,
    "flow_steps": 50,
    "molecule_noise": 1.0,
    "ot_pairing": True,
    "condition_every_layer": False,
    "denoise_sigma_max": 0.0,
    "denoise_fraction": 0.25,
    "snap_steps": 5,
    "candidates": 1,
    "type_head": False,
}


def _v1_to_v2(payload: dict) -> dict:
    """Record every decoder option of an autoencoder, and its one-Gaussian prior as a one-component
    mixture (the same distribution). Other model kinds are unchanged."""
    if payload.get("kind") != "autoencoder":
        return payload
    config = dict(payload["model_config"])
    config["decoder"] = {**V1_DECODER_OPTIONS, **(config.get("decoder") or {})}
    config.setdefault("prior_components", 1)
    state = dict(payload["state_dict"])
    if "prior_weights" not in state:
        state["prior_weights"] = torch.ones(1, dtype=state["prior_mean"].dtype)
        state["prior_means"] = state["prior_mean"][None].clone()
        state["prior_scale_trils"] = state["prior_scale_tril"][None].clone()
    return {**payload, "model_config": config, "state_dict": state}


# format version N -> the function that turns a version-N payload into a version-(N + 1) one
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2}


def migrate(payload: dict, label: str) -> dict:
    """``payload`` brought to :data:`FORMAT_VERSION`; ModelError for a version no migration reaches."""
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelError(f"checkpoint {label} records no valid format version ({version!r})")
    if version > FORMAT_VERSION:
        raise ModelError(
            f"checkpoint {label} has format version {version}, written by a newer motif_screen; "
            f"this code reads versions 1 to {FORMAT_VERSION}: upgrade motif_screen"
        )
    while version < FORMAT_VERSION:
        try:
            payload = MIGRATIONS[version](payload)
        except (KeyError, TypeError, IndexError) as exc:
            raise ModelError(
                f"checkpoint {label} (format version {version}) lacks what its format holds "
                f"({type(exc).__name__}: {exc})"
            ) from None
        version += 1
        payload["format_version"] = version
    return payload
