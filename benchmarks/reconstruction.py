"""Reconstruction scored as CDVAE's RecEval, shared by the reconstruction benchmarks of every family."""

from __future__ import annotations

import time


def reconstruct(model, structures, steps, candidates: int, seed: int) -> tuple[dict, list, float]:
    """(metrics, decoded structures or None, decoding seconds) of ``structures`` encoded to their latent
    means and decoded with ``steps`` flow steps and best of ``candidates`` (1 = one decode).

    Metrics: CDVAE's ``match_rate`` and ``rmse`` (only valid predictions count), the share matched with
    RMS < 0.05 / 0.1, ``valid_rate``, and ``n_unknown_elements`` (cells the model cannot encode, which
    count as failures); per structure, ``per_structure_rms`` (None: no match) and ``per_structure_valid``."""
    import numpy as np
    import torch

    from motif_screen.generation.metrics import cdvae_validity, reconstruction_metrics

    vocabulary = set(model.config.elements)
    known = [i for i, s in enumerate(structures) if {site.specie.Z for site in s} <= vocabulary]
    z = model.encode([structures[i] for i in known])
    start = time.time()
    generator = torch.Generator().manual_seed(seed)
    decoded_known = model.decode(z, steps=steps, generator=generator, candidates=candidates)
    seconds = time.time() - start
    decoded = [None] * len(structures)
    for i, s in zip(known, decoded_known):
        decoded[i] = s
    valid = [s is not None and all(cdvae_validity(s)) for s in decoded]
    filled = [s if s is not None else structures[i] for i, s in enumerate(decoded)]
    rec = reconstruction_metrics(filled, structures, valid)
    rms = rec["per_structure_rms"]
    rec["per_structure_valid"] = valid
    rec["precise_0_05"] = float(np.mean([r is not None and r < 0.05 for r in rms]))
    rec["precise_0_1"] = float(np.mean([r is not None and r < 0.1 for r in rms]))
    rec["valid_rate"] = float(np.mean(valid))
    rec["n_unknown_elements"] = len(structures) - len(known)
    return rec, decoded, seconds
