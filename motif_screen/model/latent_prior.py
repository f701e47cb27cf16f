"""The latent prior as a Gaussian mixture fitted to encoded training structures (scikit-learn's EM).

Kept apart from the autoencoder so that the choice of the number of components — held-out
log-likelihood, a fixed split — is one small pure function, testable without a model.
"""

from __future__ import annotations

import torch
from sklearn.mixture import GaussianMixture

from motif_screen.errors import InputError

AUTO_CANDIDATES = (1, 2, 4, 8, 16, 32)  # component counts "auto" compares
HELD_OUT_FRACTION = 0.2


def _mixture(latents, k: int, reg: float, seed: int):
    return GaussianMixture(k, covariance_type="full", reg_covar=reg, random_state=seed, max_iter=500).fit(latents)


def _choose_components(latents: torch.Tensor, reg: float, seed: int) -> tuple[int, dict]:
    """The candidate with the best mean log-likelihood on a held-out fifth (seeded split), and every score."""
    n, dim = latents.shape
    held = int(round(n * HELD_OUT_FRACTION))
    candidates = [
        k for k in AUTO_CANDIDATES if k * dim <= n - held
    ]  # a latent dimension's worth of points per component
    if held < 2 or len(candidates) < 2:
        return 1, {}
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    fit_part, held_part = latents[order[held:]].double().numpy(), latents[order[:held]].double().numpy()
    scores = {k: float(_mixture(fit_part, k, reg, seed).score(held_part)) for k in candidates}
    return max(scores, key=lambda k: scores[k]), {f"prior_heldout_loglik_k{k}": v for k, v in scores.items()}


def fit_gaussian_mixture(latents: torch.Tensor, components: int | str, reg: float, seed: int = 0):
    """(weights (K,), means (K, D), Cholesky factors (K, D, D), summary) of a K-component
    full-covariance mixture; all three ``None`` when K is 1 (the caller's single Gaussian).

    ``components="auto"`` compares :data:`AUTO_CANDIDATES` that leave at least one latent
    dimension's worth of fitting points per component, by mean log-likelihood on a held-out fifth,
    and refits the best on everything; the summary records every held-out score so the choice can
    be checked.
    """
    summary: dict = {}
    if components == "auto":
        components, summary = _choose_components(latents, reg, seed)
    try:
        components = int(str(components))
    except ValueError:
        raise InputError(f"prior components must be a positive integer or 'auto', got {components!r}") from None
    if not 1 <= components <= len(latents):
        raise InputError(
            f"prior components must be between 1 and the {len(latents)} encoded structures, got {components}"
        )
    summary["prior_components"] = components
    if components == 1:
        return None, None, None, summary
    mixture = _mixture(latents.double().numpy(), components, reg, seed)
    dtype = latents.dtype
    weights = torch.as_tensor(mixture.weights_, dtype=dtype)
    means = torch.as_tensor(mixture.means_, dtype=dtype)
    trils = torch.linalg.cholesky(torch.as_tensor(mixture.covariances_, dtype=torch.float64)).to(dtype)
    return weights, means, trils, summary
