"""The chemistry rule generation hands the decoder: SMACT charge balance (crystals), valences (molecules)."""

from __future__ import annotations

import torch

from motif_screen.generation.compositions import compound_rule
from motif_screen.generation.molecules import valences_can_pair
from motif_screen.model.decoder import Decoder, DecoderConfig

OXIDES = [8, 22, 38]  # O, Ti, Sr
QM9 = [1, 6, 7, 8, 9]


def test_charge_balanced_counts_take_the_best_composition_that_passes_smact():
    """SrO4 is the most probable composition here but fails the SMACT charge-balance test; with
    the crystal rule the decoder takes the next best that passes (SrTiO3)."""
    torch.manual_seed(0)
    dec = Decoder(DecoderConfig(latent_dim=6, elements=OXIDES, channels=8, num_layers=2, max_atoms=8))
    log_probs = torch.full((1, 3, dec.config.max_atoms + 1), -10.0)
    log_probs[0, 0, 4], log_probs[0, 0, 3] = 0.0, -1.0  # O: 4, else 3
    log_probs[0, 1, 0], log_probs[0, 1, 1] = 0.0, -1.5  # Ti: 0, else 1
    log_probs[0, 2, 1] = 0.0  # Sr: 1
    dec.composition_log_probs = lambda latent: log_probs.log_softmax(-1).expand(len(latent), -1, -1)
    balanced = compound_rule(OXIDES, periodic=True)
    z = torch.zeros(1, 6)
    assert dec.predict_counts(z, num_atoms=[5]) == [[4, 0, 1]]
    assert not balanced([4, 0, 1]) and balanced([3, 1, 1])
    assert dec.predict_counts(z, num_atoms=[5], accept=balanced) == [[3, 1, 1]]


def test_molecule_rule_is_the_valence_pairing_of_the_formula():
    rule = compound_rule(QM9, periodic=False)
    for counts in ([4, 1, 0, 0, 0], [3, 1, 0, 0, 0], [2, 0, 0, 1, 0], [6, 1, 0, 0, 0], [0, 0, 0, 0, 0]):
        expected = valences_can_pair({z: n for z, n in zip(QM9, counts) if n})
        assert rule(counts) == expected
    assert rule([4, 1, 0, 0, 0]) and not rule([3, 1, 0, 0, 0])  # CH4 pairs, CH3 is a radical
