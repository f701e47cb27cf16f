"""Hypothetical structures from the autoencoder's latent space, with provenance and validity.

>>> report = sample_prior(model, n=100, seed=0)
>>> print(report.summary())          # "prior: 93 of 100 valid; 7 invalid:charge (4.1 s)"
>>> [g.structure for g in report.valid]
"""

from motif_screen.generation.modes import (
    constrained,
    decode_latents,
    guided,
    interpolate,
    parse_composition,
    perturb,
    sample_prior,
)
from motif_screen.generation.results import MAX_REQUEST, GeneratedStructure, GenerationReport

__all__ = [
    "GeneratedStructure",
    "GenerationReport",
    "MAX_REQUEST",
    "constrained",
    "decode_latents",
    "guided",
    "interpolate",
    "parse_composition",
    "perturb",
    "sample_prior",
]
