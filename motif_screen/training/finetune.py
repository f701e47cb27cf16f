"""Fine-tuning the property heads of a trained autoencoder on a few oracle results (the retraining loop).

Only the heads move: with tens of labels, updating the encoder or decoder would forget the
structure map they learned from thousands. Latents are computed once; the loss is the heads'
Gaussian negative log-likelihood, so the ensemble's uncertainty is re-fitted along with the mean.
The normalisation of the targets is kept, so predictions stay comparable across retraining rounds.
"""

from __future__ import annotations

import numpy as np
import torch

from motif_screen.errors import InputError
from motif_screen.model.autoencoder import StructureAutoencoder
from motif_screen.model.heads import heads_nll

__all__ = ["fine_tune_heads"]


def fine_tune_heads(
    model: StructureAutoencoder,
    structures: list,
    targets: dict[str, np.ndarray],
    *,
    epochs: int = 30,
    lr: float = 3e-3,
    seed: int = 0,
) -> dict:
    """Train ``model.heads`` in place on (structures, targets); properties not given stay unlabelled.

    Returns ``{"task": "fine_tune_heads", "epochs", "first_loss", "last_loss"}``. Unknown
    properties, no structures, no finite label or a non-finite loss raise InputError with the heads
    unchanged."""
    properties = list(model.config.properties)
    unknown = set(targets) - set(properties)
    if unknown:
        raise InputError(
            f"the model has no head for {', '.join(sorted(unknown))}, so it cannot be fine-tuned on it; "
            f"it predicts {', '.join(properties) or 'nothing'}"
        )
    if model.heads is None or not structures:
        raise InputError("nothing to fine-tune: the model has no property heads or no structures were given")
    torch.manual_seed(seed)
    latent = model.encode(list(structures))
    y = torch.full((len(structures), len(properties)), float("nan"), dtype=latent.dtype)
    for name, values in targets.items():
        y[:, properties.index(name)] = torch.as_tensor(np.asarray(values, dtype=float), dtype=latent.dtype)
    if not torch.isfinite(y).any():
        raise InputError("no finite target values to fine-tune on")
    y_norm = model.target_scaler.normalise(y)
    before = {k: v.detach().clone() for k, v in model.heads.state_dict().items()}
    optimizer = torch.optim.Adam(model.heads.parameters(), lr=lr)
    model.heads.train()
    history = []
    for _ in range(max(0, int(epochs))):
        optimizer.zero_grad()
        head_mean, head_log_var = model.heads(latent)
        loss = heads_nll(head_mean, head_log_var, y_norm)
        if not torch.isfinite(loss):
            model.heads.load_state_dict(before)
            model.heads.eval()
            raise InputError("fine-tuning diverged (non-finite loss); the heads were left as they were")
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    model.heads.eval()
    return {
        "task": "fine_tune_heads",
        "epochs": len(history),
        "first_loss": history[0] if history else None,
        "last_loss": history[-1] if history else None,
    }
