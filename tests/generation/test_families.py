"""Family generation: ABX3 formulas from the model's elements, geometry from the shipped decoder."""

import pytest
from pymatgen.core import Composition

from motif_screen.generation.families import abx3_formulas, sample_family, substitute_around, substitutions
from motif_screen.structures.validity import composition_is_valid


@pytest.fixture(scope="module")
def shipped_model():
    from motif_screen.model.checkpoint import load_checkpoint
    from motif_screen.pretrained import shipped_checkpoint

    model = load_checkpoint(shipped_checkpoint())
    model.eval()
    return model


def test_abx3_formulas_are_charge_balanced_and_from_the_vocabulary(shipped_model):
    from pymatgen.core import Element

    vocabulary = tuple(shipped_model.config.elements)
    formulas = abx3_formulas(vocabulary)
    assert len(formulas) > 100 and "BaTiO3" in formulas or "TiBaO3" in formulas or any(
        Composition(f).reduced_formula == "BaTiO3" for f in formulas)
    symbols = {Element.from_Z(z).symbol for z in vocabulary}
    for formula in formulas[::97]:
        comp = Composition(formula)
        assert comp.num_atoms == 5 and {str(e) for e in comp.elements} <= symbols
        assert composition_is_valid(formula)[0]


def test_substitutions_keep_the_anion_and_one_cation(shipped_model):
    vocabulary = tuple(shipped_model.config.elements)
    subs = substitutions("SrTiO3", vocabulary)
    assert subs and all("O" in {str(e) for e in Composition(f).elements} for f in subs)
    assert all(len({"Sr", "Ti", "O"} & {str(e) for e in Composition(f).elements}) == 2 for f in subs)


def test_family_samples_have_the_requested_formulas_and_provenance(shipped_model, perovskites):
    report = sample_family(shipped_model, n=4, seed=3, steps=2)
    assert len(report) == 4
    for g in report:
        assert g.mode == "family" and len(g.latent) == shipped_model.latent_dim
        assert Composition(g.parents[0]).reduced_formula == g.structure.composition.reduced_formula
    around = substitute_around(shipped_model, [perovskites["SrTiO3"]], n=3, seed=1, names=["cand-1"], steps=2)
    for g in around:
        assert g.parents[0] == "cand-1" and g.mode == "substitute"
        assert len({"Sr", "Ti", "O"} & {str(e) for e in g.structure.composition.elements}) == 2
