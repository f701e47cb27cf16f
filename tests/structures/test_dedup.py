import numpy as np

from motif_screen.structures.dedup import (
    CDVAE_MATCHER_SETTINGS,
    ReferenceSet,
    default_matcher,
    duplicate_of,
    novel_mask,
    reference_matches,
    unique_indices,
)


def _rattled(structure, scale, seed):
    s = structure.copy()
    rng = np.random.default_rng(seed)
    for i in range(len(s)):
        s.translate_sites([i], rng.normal(scale=scale, size=3), frac_coords=False)
    return s


def test_default_matcher_is_cdvaes():
    m = default_matcher()
    assert CDVAE_MATCHER_SETTINGS == {"stol": 0.5, "angle_tol": 10, "ltol": 0.3}
    assert (m.stol, m.angle_tol, m.ltol) == (0.5, 10, 0.3)


def test_unique_indices_inside_a_batch(crystals):
    sto, nacl = crystals["SrTiO3"], crystals["NaCl"]
    supercell = sto.copy()
    supercell.make_supercell([2, 1, 1])
    strained = sto.copy()
    strained.apply_strain(0.05)
    rotated_order = sto.copy()
    rotated_order.sort(key=lambda site: -site.specie.Z)
    batch = [sto, nacl, _rattled(sto, 0.03, 0), supercell, strained, rotated_order, crystals["ZnS"], nacl.copy()]
    assert unique_indices(batch) == [0, 1, 6]
    assert duplicate_of(batch) == [0, 1, 0, 0, 0, 0, 6, 1]


def test_same_formula_different_structure_is_unique(crystals):
    """A and B sites swapped: same formula, different structure (Ti 12-fold, Sr 6-fold)."""
    from pymatgen.core import Structure

    sto = crystals["SrTiO3"]
    swapped = Structure(sto.lattice, ["Ti", "Sr", "O", "O", "O"], sto.frac_coords)
    assert unique_indices([sto, swapped]) == [0, 1]
    assert novel_mask([swapped], [sto]).tolist() == [True]


def test_loose_cdvae_tolerance_is_what_it_is(crystals):
    """Documented consequence of stol=0.5: zincblende and rocksalt ZnS count as the same structure."""
    from pymatgen.core import Lattice, Structure

    rocksalt_zns = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.4), ["Zn", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert unique_indices([crystals["ZnS"], rocksalt_zns]) == [0]


def test_novel_mask_against_references(crystals):
    refs = [crystals["SrTiO3"], crystals["NaCl"], crystals["Cu"]]
    cands = [_rattled(crystals["SrTiO3"], 0.02, 1), crystals["ZnS"], crystals["CsCl"], crystals["Cu"].copy()]
    assert novel_mask(cands, refs).tolist() == [False, True, True, False]
    reference_set = ReferenceSet(refs)
    assert reference_matches(cands, reference_set) == [0, None, None, 2]
    assert novel_mask([], refs).shape == (0,)
    assert novel_mask(cands, []).all()


def test_molecules_deduplicate_by_geometry():
    from ase.build import molecule
    from pymatgen.io.ase import AseAtomsAdaptor

    water = AseAtomsAdaptor.get_molecule(molecule("H2O"))
    turned = water.copy()
    turned.rotate_sites(theta=1.0, axis=[1, 2, 3])
    turned.translate_sites(list(range(3)), [5, 0, 0])
    stretched = water.copy()
    stretched.translate_sites([1], [0.5, 0, 0])
    assert unique_indices([water, turned, stretched]) == [0, 2]
    assert novel_mask([turned, stretched], [water]).tolist() == [False, True]


def test_sure_match_shortcut_never_contradicts_the_matcher(crystals):
    """The fast path may only say "same" when StructureMatcher says so too; it should catch small rattles."""
    from motif_screen.structures.dedup import _Prepared, _sure_match

    matcher = default_matcher()
    rng = np.random.default_rng(7)
    caught = 0
    for k, name in enumerate(["SrTiO3", "NaCl", "ZnS", "TiO2", "MoS2", "CsCl"]):
        base = crystals[name].get_primitive_structure()
        for trial in range(6):
            other = _rattled(base, [0.01, 0.05, 0.3][trial % 3], seed=100 * k + trial)
            other.apply_strain(rng.uniform(-0.03, 0.03, size=3))
            if trial % 2:
                other.make_supercell([[0, 1, 0], [1, 0, 0], [0, 0, -1]])  # same cell, other basis
            if trial == 5:
                other.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 1]])
            sure = _sure_match(_Prepared(base), _Prepared(other), matcher)
            if sure:
                assert matcher.fit(base, other), (name, trial)
                caught += 1
        swapped_species = base.copy()
        if len(base.composition) > 1:
            a, b = [el.symbol for el in base.composition.elements[:2]]
            swapped_species.replace_species({a: b, b: a})
            if not matcher.fit(base, swapped_species):
                assert not _sure_match(_Prepared(base), _Prepared(swapped_species), matcher)
    assert caught >= 12


def _perovskite_pairs(count: int, seed: int):
    """Pairs like the screening ones: a distorted ABX3 cell against rattled, strained, re-based or A/B-swapped copies."""
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(seed)
    elements = [("Sr", "Ti", "O"), ("La", "Fe", "N"), ("Cd", "In", "N"), ("Ba", "Zr", "S")]
    pairs = []
    for k in range(count):
        a, b, x = elements[k % len(elements)]
        shift = rng.uniform(-0.2, 0.2, size=2)
        coords = [[shift[0] % 1, 0, 0], [0.5 + shift[1], 0.5, 0.5], [0.5 + shift[1] / 2, 0, 0.5], [0.5 + shift[1] / 2, 0.5, 0], [shift[0] / 2, 0.5, 0.5]]
        base = Structure(Lattice.cubic(rng.uniform(3.8, 4.3)), [a, b, x, x, x], coords)
        other = base.copy()
        kind = k % 4
        if kind == 1:  # A and B exchanged: CDVAE's loose tolerance matches some of these
            other = Structure(base.lattice, [b, a, x, x, x], base.frac_coords)
        elif kind == 2:  # another basis of the same lattice
            other.make_supercell([[0, 1, 0], [1, 0, 0], [0, 0, -1]])
        other.apply_strain(rng.uniform(-0.04, 0.04, size=3))
        scale = [0.02, 0.15, 0.4, 0.7][int(rng.integers(4))]
        for i in range(len(other)):
            other.translate_sites([i], rng.normal(scale=scale, size=3), frac_coords=False)
        pairs.append((other, base))
    return pairs


def test_shortcuts_give_the_matchers_answers(crystals):
    """Every pair decided by a shortcut gets plain ``StructureMatcher.fit``'s answer; most pairs are decided."""
    from motif_screen.structures.dedup import _decide, _Options, _Prepared, _same

    matcher = default_matcher()
    options = _Options(matcher)
    pairs = _perovskite_pairs(160, seed=3)
    sto = crystals["SrTiO3"]
    pairs += [(_rattled(sto, scale, seed), sto) for seed, scale in enumerate([0.1, 0.3, 0.5, 0.7, 0.9])]
    decided = {True: 0, False: 0}
    different = 0
    for candidate, reference in pairs:
        truth = matcher.fit(candidate, reference)
        different += not truth
        a, b = _Prepared(candidate), _Prepared(reference)
        answer = _decide(a.cell(), b.cell(), matcher.stol, matcher.ltol, matcher.angle_tol)
        if answer is not None:
            assert answer == truth, (candidate, reference)
            decided[answer] += 1
        assert _same(a, b, options) == truth
    assert decided[True] >= 20 and decided[False] >= 20, decided
    assert sum(decided.values()) >= 0.8 * len(pairs), decided  # 89% on this deliberately harsh mix (rattles to 0.7 Å)
    # every different pair here is ruled out without fit() (the image-choice test in _surely_apart;
    # before it, 4 in 10 different perovskite pairs went to fit)
    assert decided[False] >= 0.95 * different, (decided, different)


def test_public_reduction_is_the_matchers(crystals):
    """The reduced cells come from public pymatgen calls; they must be the ones the matcher computes itself."""
    from motif_screen.structures.dedup import _Prepared

    matcher = default_matcher()
    supercell = crystals["SrTiO3"].copy()
    supercell.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 2]])
    for structure in [supercell, crystals["ZnS"], crystals["TiO2"], crystals["MoS2"], _rattled(crystals["NaCl"], 0.05, 1)]:
        ours = _Prepared(structure).ready(True)
        theirs = matcher._get_reduced_structure(structure, True, True)  # private: only to check against
        assert np.allclose(ours.lattice.matrix, theirs.lattice.matrix)
        assert [str(s) for s in ours.species] == [str(s) for s in theirs.species]
        assert np.allclose(ours.frac_coords, theirs.frac_coords)


def test_the_matchers_other_options_bypass_the_shortcuts(crystals):
    """With supercells allowed the shortcuts do not apply: answers come from fit() alone."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3, attempt_supercell=True)
    supercell = crystals["SrTiO3"].copy()
    supercell.make_supercell([2, 1, 1])
    batch = [crystals["SrTiO3"], supercell, _rattled(crystals["SrTiO3"], 0.02, 5)]
    assert duplicate_of(batch, matcher) == [0, 0, 0]


def test_disordered_structures_go_to_the_matcher(crystals):
    """Partially occupied sites take the plain fit() path; ordered and disordered never match."""
    disordered = crystals["SrTiO3"].copy()
    disordered.replace(0, {"Sr": 0.5, "Ba": 0.5})
    again = disordered.copy()
    again.apply_strain(0.01)
    assert duplicate_of([disordered, again, crystals["SrTiO3"]]) == [0, 0, 2]
    assert default_matcher().fit(disordered, again)
