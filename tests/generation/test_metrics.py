"""CDVAE-style metrics: reconstruction match/RMSE, validity, coverage."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from motif_screen.generation.metrics import (
    cdvae_validity,
    composition_fingerprint,
    coverage,
    reconstruction_metrics,
    structure_fingerprint,
)


def perovskite(length=3.9, d=0.0, b="Ti"):
    return Structure(Lattice.cubic(length), ["Sr", b, "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5 + d], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def test_reconstruction_counts_only_valid_matches():
    truth = [perovskite(), perovskite(), perovskite()]
    shifted = perovskite(d=0.02)
    shifted.translate_sites(range(5), [0.13, 0.2, 0.7])  # same crystal, another origin
    preds = [shifted, perovskite(b="Zr"), perovskite()]
    out = reconstruction_metrics(preds, truth, valid=[True, True, False])
    assert out["match_rate"] == 1 / 3
    assert 0 < out["rmse"] < 0.05
    assert out["per_structure_rms"][1] is None and out["per_structure_rms"][2] is None


def test_cdvae_validity():
    assert cdvae_validity(perovskite()) == (True, True)
    crushed = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O"], [[0, 0, 0], [0.05, 0, 0], [0.5, 0.5, 0.5]])
    assert cdvae_validity(crushed)[0] is False
    assert cdvae_validity(Structure(Lattice.cubic(4.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]]))[1] is False


def test_fingerprints_are_scale_free_and_coverage_counts_both_cutoffs():
    a, b = structure_fingerprint(perovskite(3.9)), structure_fingerprint(perovskite(4.4))
    assert np.allclose(a, b, atol=1e-8)
    comp = composition_fingerprint(perovskite(), [8, 22, 38])
    assert np.allclose(comp, [0.6, 0.2, 0.2, 0.0])
    gen_s, ref_s = np.array([[0.0], [5.0]]), np.array([[0.1], [0.2], [9.0]])
    gen_c, ref_c = np.zeros((2, 1)), np.array([[0.0], [3.0], [0.0]])
    out = coverage(gen_s, gen_c, ref_s, ref_c, struct_cutoff=0.5, comp_cutoff=1.0)
    # reference 0 recalled (both close); reference 1 only structurally close; reference 2 far
    assert out["cov_r"] == 1 / 3 and out["cov_p"] == 1 / 2


def test_cdvae_fingerprints_follow_cdvae_shapes_and_invariances():
    import pytest

    pytest.importorskip("matminer")
    from motif_screen.generation.metrics import cdvae_comp_fingerprint, cdvae_struct_fingerprint

    small, large = cdvae_struct_fingerprint(perovskite(3.9)), cdvae_struct_fingerprint(perovskite(4.3))
    assert small.shape == (61,) and np.allclose(small, large, atol=1e-6)  # CrystalNN "ops" is scale free
    distorted = cdvae_struct_fingerprint(perovskite(3.9, d=0.08))
    assert np.linalg.norm(distorted - small) > 0.01  # an off-centre B cation changes the octahedron
    comp = cdvae_comp_fingerprint(perovskite().composition)
    assert comp.shape == (132,) and np.all(np.isfinite(comp))
    assert np.linalg.norm(comp - cdvae_comp_fingerprint(perovskite(b="Zr").composition)) > 0.5


def test_cdvae_coverage_counts_samples_without_fingerprint_in_precision():
    from motif_screen.generation.metrics import cdvae_coverage

    ref_s, ref_c = [np.zeros(2), np.ones(2) * 5], [np.zeros(3), np.zeros(3)]
    gen_s, gen_c = [np.zeros(2) + 0.05, None], [np.zeros(3), np.zeros(3)]
    out = cdvae_coverage(gen_s, gen_c, ref_s, ref_c, struct_cutoff=0.2, comp_cutoff=4.0)
    assert out == {"cov_r": 0.5, "cov_p": 0.5}  # one reference recalled; the fingerprint-less sample is not precise
