"""Generation modes: pymatgen objects with provenance, honest validity tallies, clear bad-input errors."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Molecule, Structure

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.generation import (
    GeneratedStructure,
    GenerationReport,
    constrained,
    guided,
    interpolate,
    parse_composition,
    perturb,
    sample_prior,
)
from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder

TINY = dict(latent_dim=8, encoder_options=dict(channels=8, layers=1, latent_dim=8, latent_vectors=2),
            decoder=dict(channels=8, num_layers=1, max_atoms=8, flow_steps=2))
ELEMENTS = [8, 9, 19, 22, 38, 41, 55, 82]  # O F K Ti Sr Nb Cs Pb


def perovskite(a, b, x, length):
    return Structure(Lattice.cubic(length), [a, b, x, x, x],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


SRTIO3 = perovskite("Sr", "Ti", "O", 3.9)
KNBO3 = perovskite("K", "Nb", "O", 4.0)
KNBO3.properties["material_id"] = "mp-KNbO3"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_autoencoder(AutoencoderConfig(elements=ELEMENTS, properties=[keys.FORMATION_ENERGY], **TINY)).eval()
    m.decoder.lattice_mean.copy_(torch.tensor([2.3, 2.3, 2.3, 90.0, 90.0, 90.0]))  # ~4 Å for 5 atoms
    m.decoder.lattice_std.copy_(torch.tensor([0.1, 0.1, 0.1, 1.0, 1.0, 1.0]))
    with torch.no_grad():  # an untrained head is nearly flat (small last layer): give it a slope to follow
        m.heads.w3.mul_(30.0)
    m.model_name, m.model_version = "tiny", 3
    return m


def _check(report, mode, n):
    assert isinstance(report, GenerationReport) and report.mode == mode and len(report) == n
    for item in report:
        assert isinstance(item, GeneratedStructure) and item.mode == mode
        assert isinstance(item.structure, Structure) and len(item.structure) >= 1
        assert item.model_version == 3 and item.model_name == "tiny" and len(item.latent) == 8
        assert item.valid == (item.reason == "") and set(item.validity) >= {"finite"}
        assert keys.FORMATION_ENERGY in item.predictions
        row = item.provenance()
        assert row["mode"] == mode and row["formula"] == item.structure.composition.reduced_formula
    # nothing dropped, nothing hidden: invalid ones are tallied by reason
    assert len(report.valid) + sum(report.failure_counts.values()) == n
    assert f"of {n} valid" in report.summary()


def test_sample_prior_is_reproducible(model):
    a, b = sample_prior(model, 4, seed=7), sample_prior(model, 4, seed=7)
    _check(a, "prior", 4)
    assert [g.structure.formula for g in a] == [g.structure.formula for g in b]
    assert a[0].latent == b[0].latent and a[0].parents == []


def test_prior_samples_are_charge_balanced_unless_asked_otherwise(model):
    """An untrained composition head proposes arbitrary mixtures; by default every decoded
    composition passes the SMACT test (when one of the searched compositions does)."""
    from motif_screen.structures.validity import composition_is_valid

    balanced = sample_prior(model, 12, seed=3)
    free = sample_prior(model, 12, seed=3, charge_balanced=False)
    assert all(composition_is_valid(g.structure.composition)[0] for g in balanced)
    assert not all(composition_is_valid(g.structure.composition)[0] for g in free)


def test_perturb_names_its_parents(model):
    report = perturb(model, [SRTIO3, KNBO3], 4, scale=0.2, seed=1)
    _check(report, "perturb", 4)
    assert [g.parents for g in report] == [["SrTiO3#0"], ["mp-KNbO3"], ["SrTiO3#0"], ["mp-KNbO3"]]
    centre = model.encode([SRTIO3])[0]
    assert torch.linalg.norm(torch.tensor(report[0].latent) - centre) < 0.2 * 8  # near its seed


def test_interpolate_runs_between_the_two_latents(model):
    report = interpolate(model, SRTIO3, KNBO3, steps=3, names=["a", "b"])
    _check(report, "interpolate", 3)
    ends = model.encode([SRTIO3, KNBO3])
    assert torch.allclose(torch.tensor(report[0].latent), ends[0], atol=1e-5)
    assert torch.allclose(torch.tensor(report[2].latent), ends[1], atol=1e-5)
    assert report[1].parents == ["a", "b"]


@pytest.mark.parametrize("method", ["gradient", "rejection"])
def test_guided_lowers_the_predicted_property(model, method):
    plain = sample_prior(model, 6, seed=2)
    report = guided(model, 6, keys.FORMATION_ENERGY, "minimize", seed=2, method=method, iterations=30)
    _check(report, "guided", 6)
    mean = lambda r: sum(g.predictions[keys.FORMATION_ENERGY][0] for g in r) / len(r)  # noqa: E731
    assert mean(report) < mean(plain)


def test_constrained_to_a_chemical_system_and_a_formula(model):
    report = constrained(model, 3, "Sr-Ti-O", seed=0)
    _check(report, "constrained", 3)
    for item in report:
        assert {el.symbol for el in item.structure.composition.elements} == {"Sr", "Ti", "O"}
    report = constrained(model, 2, "KNbO3", seed=0)
    for item in report:
        assert item.structure.composition.reduced_formula == "KNbO3"
        assert item.parents == ["KNbO3"]


def test_parse_composition():
    assert parse_composition("Sr-Ti-O", ELEMENTS) == ([38, 22, 8], None)
    numbers, counts = parse_composition("SrTiO3", ELEMENTS)
    assert counts == {38: 1, 22: 1, 8: 3}


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda m: sample_prior(m, 0), "between 1 and 100,000"),
        (lambda m: sample_prior(m, 1_000_000), "between 1 and 100,000"),
        (lambda m: sample_prior(m, 2.5), "between 1"),
        (lambda m: constrained(m, 2, "Sr-Xq-O"), "not a chemical element"),
        (lambda m: constrained(m, 2, "Ba-Ti-O"), "never saw"),
        (lambda m: constrained(m, 2, "SrO3"), "charge balanced"),
        (lambda m: perturb(m, [], 2), "at least one seed"),
        (lambda m: perturb(m, [Molecule(["O"], [[0, 0, 0]])], 2), "not a crystal"),
        (lambda m: perturb(m, [Structure(Lattice.cubic(4), ["Sr", "Sr"], [[0, 0, 0], [0.01, 0, 0]])], 2), "overlapping"),
        (lambda m: guided(m, 2, keys.BAND_GAP), "no head"),
        (lambda m: guided(m, 2, keys.FORMATION_ENERGY, "lowest"), "goal"),
        (lambda m: interpolate(m, SRTIO3, KNBO3, steps=1), "at least 2"),
    ],
)
def test_bad_input_raises_input_error(model, call, match):
    with pytest.raises(InputError, match=match):
        call(model)
