"""Generation and reconstruction metrics with CDVAE's definitions (Xie et al. 2022,
``scripts/compute_metrics.py``), so our numbers stand beside theirs:

* reconstruction: a prediction counts only if it is valid; match = ``StructureMatcher(stol=0.5,
  angle_tol=10, ltol=0.3).get_rms_dist`` finds a mapping; RMSE = mean normalised RMS of matches;
* structural validity: every interatomic distance > 0.5 Å and cell volume > 0.1 Å³;
  composition validity: SMACT charge neutrality + electronegativity (our ``check_validity``);
* coverage COV-R / COV-P: a reference is recalled (a sample is precise) when some sample
  (reference) lies within a structural AND a compositional fingerprint cutoff.
  CDVAE's fingerprints are matminer's CrystalNN "ops" and Magpie; matminer is not installed here
  (it would pin pandas < 3), so :func:`structure_fingerprint` / :func:`composition_fingerprint`
  are our own and the cutoffs are ours too: COV values are NOT comparable with CDVAE's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "cdvae_matcher",
    "cdvae_validity",
    "reconstruction_metrics",
    "structure_fingerprint",
    "composition_fingerprint",
    "coverage",
]


def cdvae_matcher():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)


def cdvae_validity(structure) -> tuple[bool, bool]:
    """(structural, compositional) validity as CDVAE defines them."""
    from motif_screen.structures.validity import composition_is_valid, min_interatomic_distance

    try:
        struct_ok = bool(structure.volume > 0.1 and min_interatomic_distance(structure) > 0.5)
    except Exception:
        struct_ok = False
    comp_ok = bool(composition_is_valid(structure.composition)[0])
    return struct_ok, comp_ok


def reconstruction_metrics(predictions: Sequence, truths: Sequence, valid: Sequence[bool] | None = None) -> dict:
    """match_rate and rmse (mean over matched structures) as CDVAE's RecEval."""
    matcher = cdvae_matcher()
    rms = []
    for i, (pred, true) in enumerate(zip(predictions, truths)):
        if valid is not None and not valid[i]:
            rms.append(None)
            continue
        try:
            result = matcher.get_rms_dist(pred, true)
        except Exception:
            result = None
        rms.append(None if result is None else float(result[0]))
    matched = [r for r in rms if r is not None]
    return {
        "match_rate": len(matched) / max(len(rms), 1),
        "rmse": float(np.mean(matched)) if matched else float("nan"),
        "per_structure_rms": rms,
    }


def structure_fingerprint(structure, bins: int = 24, r_max: float = 2.4) -> np.ndarray:
    """Mean over sites of a Gaussian-smeared histogram of neighbour distances in units of
    (V/N)^(1/3) (scale free, rotation/permutation invariant, ~1 ms for a 5-atom cell)."""
    scale = (structure.volume / len(structure)) ** (1 / 3)
    centers, _, _, distances = structure.get_neighbor_list(r_max * scale)
    grid = np.linspace(0.3, r_max, bins)
    hist = np.zeros((len(structure), bins))
    if len(distances):
        d = distances / scale
        weights = np.exp(-((d[:, None] - grid[None, :]) ** 2) / (2 * 0.08**2))
        np.add.at(hist, centers, weights)
    return hist.mean(0) / 4.0


def composition_fingerprint(structure, vocabulary: Sequence[int]) -> np.ndarray:
    """Element fractions over ``vocabulary`` (elements outside it share one extra slot)."""
    index = {z: i for i, z in enumerate(vocabulary)}
    vec = np.zeros(len(vocabulary) + 1)
    for site in structure:
        vec[index.get(site.specie.Z, len(vocabulary))] += 1
    return vec / len(structure)


def _min_distances(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a: min distance to b; for each row of b: min distance to a."""
    min_a = np.full(len(a), np.inf)
    min_b = np.full(len(b), np.inf)
    for start in range(0, len(a), chunk):
        d = np.sqrt(((a[start : start + chunk, None, :] - b[None, :, :]) ** 2).sum(-1))
        min_a[start : start + chunk] = d.min(1)
        min_b = np.minimum(min_b, d.min(0))
    return min_a, min_b


def coverage(gen_struct, gen_comp, ref_struct, ref_comp, struct_cutoff: float, comp_cutoff: float) -> dict:
    """CDVAE's COV-R / COV-P given fingerprints (rows) of generated and reference structures."""
    s_gen, s_ref = _min_distances(np.asarray(gen_struct), np.asarray(ref_struct))
    c_gen, c_ref = _min_distances(np.asarray(gen_comp), np.asarray(ref_comp))
    return {
        "cov_r": float(np.mean((s_ref <= struct_cutoff) & (c_ref <= comp_cutoff))),
        "cov_p": float(np.mean((s_gen <= struct_cutoff) & (c_gen <= comp_cutoff))),
    }
