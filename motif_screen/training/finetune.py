"""Fine-tuning the property heads of a trained model on a few oracle results (the retraining loop).

Only the heads move: with tens of labels, updating the encoder or decoder would forget the
structure map they learned from thousands. Latents are computed once; the loss is the heads'
Gaussian negative log-likelihood, so the ensemble's uncertainty is re-fitted along with the mean.
"""

from __future__ import annotations

import numpy as np
import torch

from motif_screen.errors import InputError


def fine_tune_heads(model, structures: list, targets: dict[str, np.ndarray], *, epochs: int = 30, lr: float = 3e-3,
                    seed: int = 0) -> dict:
    """Train ``model.heads`` on (structures, targets); properties not given stay unlabelled (NaN)."""
    properties = list(model.config.properties)
    unknown = set(targets) - set(properties)
    if unknown:
        raise InputError(f"the model has no head for {', '.join(sorted(unknown))}; it predicts {', '.join(properties)}")
    if model.heads is None or not structures:
        raise InputError("nothing to fine-tune: the model has no property heads or no structures were given")
    torch.manual_seed(seed)
    with torch.no_grad():
        latent = model.encode(list(structures))
    y = torch.full((len(structures), len(properties)), float("nan"), dtype=latent.dtype)
    for name, values in targets.items():
        y[:, properties.index(name)] = torch.as_tensor(np.asarray(values, dtype=float), dtype=latent.dtype)
    if not torch.isfinite(y).any():
        raise InputError("no finite target values to fine-tune on")
    y_norm = model.target_scaler.normalise(y)
    known = torch.isfinite(y_norm)
    y_norm = torch.nan_to_num(y_norm)
    optimizer = torch.optim.Adam(model.heads.parameters(), lr=lr)
    model.heads.train()
    history = []
    for _ in range(max(0, int(epochs))):
        optimizer.zero_grad()
        mu, log_var = model.heads(latent)  # (K, B, P)
        nll = 0.5 * (log_var + (mu - y_norm[None]) ** 2 / log_var.exp())
        loss = nll[known[None].expand_as(nll)].mean()
        if not torch.isfinite(loss):
            raise InputError("fine-tuning diverged (non-finite loss); the model was not changed in the database")
        loss.backward()
        optimizer.step()
        history.append(float(loss))
    model.heads.eval()
    return {"epochs": len(history), "first_loss": history[0] if history else None,
            "last_loss": history[-1] if history else None}
