"""Family generation: ABX3 formulas from the model's elements, geometry from the shipped decoder."""

import pytest
from pymatgen.core import Composition

from motif_screen.errors import InputError
from motif_screen.generation.families import (
    FUNNEL,
    abx3_formulas,
    abx3_rule_counts,
    abx3_screen,
    perovskite_screen,
    sample_family,
    substitute_around,
    substitutions,
)
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
    assert len(formulas) > 100 and "BaTiO3" in formulas  # A site first
    symbols = {Element.from_Z(z).symbol for z in vocabulary}
    for formula in formulas[::37]:
        comp = Composition(formula)
        assert comp.num_atoms == 5 and {str(e) for e in comp.elements} <= symbols
        assert composition_is_valid(formula)[0]
        assert perovskite_screen(formula)[0]


def test_the_shipped_model_keeps_a_healthy_number_of_perovskite_formulas(shipped_model):
    vocabulary = tuple(shipped_model.config.elements)
    counts = abx3_rule_counts(vocabulary)
    print("ABX3 formulas over the shipped model's elements:", counts)
    assert list(counts) == list(FUNNEL)
    assert list(counts.values()) == sorted(counts.values(), reverse=True)  # each rule keeps a subset
    assert counts["charge_balanced_smact"] == 5168  # the old rule's count
    assert counts["perovskite_size"] == len(abx3_formulas(vocabulary)) >= 300  # measured: 371
    formulas = set(abx3_formulas(vocabulary))
    for known in ("SrTiO3", "BaTiO3", "BaZrO3", "KNbO3", "LaAlO3", "CaTiO3", "KMgF3", "NaMgF3"):
        assert known in formulas, known
    verdicts = {v.formula: v for v in abx3_screen(vocabulary)}
    for bad, rule in (("SiGeF3", "oxidation"), ("TaTeF3", "oxidation"), ("YZrF3", "oxidation"), ("BiSbS3", "size")):
        spelled = next(f for f in verdicts if Composition(f).almost_equals(Composition(bad)))
        assert not verdicts[spelled].ok and verdicts[spelled].rule == rule and verdicts[spelled].why
    # every anion of the vocabulary (O, N, F, S) still has candidates
    assert {x for f in formulas for x in ("O", "N", "F", "S") if f.endswith(x + "3")} == {"O", "N", "F", "S"}


def test_a_vocabulary_without_perovskites_says_which_rule_removed_them():
    from pymatgen.core import Element

    vocabulary = tuple(Element(s).Z for s in ("Si", "Ge", "F"))
    with pytest.raises(
        InputError, match="no ABX3 perovskite composition .*1 candidates, 1 charge balanced smact, 0 common"
    ):
        abx3_formulas(vocabulary)


def test_substitutions_keep_the_anion_and_one_cation(shipped_model):
    vocabulary = tuple(shipped_model.config.elements)
    subs = substitutions("SrTiO3", vocabulary)
    assert subs and all("O" in {str(e) for e in Composition(f).elements} for f in subs)
    assert all(len({"Sr", "Ti", "O"} & {str(e) for e in Composition(f).elements}) == 2 for f in subs)
    assert {"BaTiO3", "CaTiO3", "SrZrO3"} <= set(subs) and set(subs) <= set(abx3_formulas(vocabulary))
    assert "SrSiO3" not in subs  # Si4+ is far too small for the B site (tau = 5.1)


def test_family_samples_have_the_requested_formulas_and_provenance(shipped_model, perovskites):
    report = sample_family(shipped_model, n=4, seed=3, steps=2)
    assert len(report) == 4
    assert report.formula_rules == abx3_rule_counts(tuple(shipped_model.config.elements))
    assert "perovskite size" in report.summary()
    assert all(perovskite_screen(g.parents[0])[0] for g in report)
    for g in report:
        assert g.mode == "family" and len(g.latent) == shipped_model.latent_dim
        assert Composition(g.parents[0]).reduced_formula == g.structure.composition.reduced_formula
    around = substitute_around(shipped_model, [perovskites["SrTiO3"]], n=3, seed=1, names=["cand-1"], steps=2)
    for g in around:
        assert g.parents[0] == "cand-1" and g.mode == "substitute"
        assert len({"Sr", "Ti", "O"} & {str(e) for e in g.structure.composition.elements}) == 2
