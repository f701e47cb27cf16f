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


def test_sure_mismatch_shortcut_never_contradicts_the_matcher(crystals):
    """The reject path may only say "different" when StructureMatcher says so too, and must fire on real mismatches."""
    from pymatgen.core import Structure

    from motif_screen.structures.dedup import _lattice_mappings, _Prepared, _sure_mismatch

    matcher = default_matcher()
    sto = crystals["SrTiO3"]
    variants = [
        _rattled(sto, 0.3, 1),
        _rattled(sto, 0.6, 2),
        _rattled(sto, 0.9, 3),
        Structure(sto.lattice, ["Ti", "Sr", "O", "O", "O"], sto.frac_coords),
        _rattled(Structure(sto.lattice, ["Ti", "Sr", "O", "O", "O"], sto.frac_coords), 0.2, 4),
        Structure(sto.lattice, ["Sr", "O", "Ti", "O", "O"], sto.frac_coords),
    ]
    rejected = 0
    base = _Prepared(sto).ready(matcher)
    for other in variants:
        ready = _Prepared(other).ready(matcher)
        fit = matcher.fit(base, ready, skip_structure_reduction=True)
        sure_different = _sure_mismatch(base, ready, matcher)
        assert not (sure_different and fit)
        rejected += sure_different
        # our vectorised lattice-mapping search covers every mapping pymatgen tries
        s1, s2, _, _ = matcher._preprocess(base, ready, skip_structure_reduction=True)
        ours = _lattice_mappings(s1.lattice, s2.lattice.matrix, matcher.ltol, matcher.angle_tol)
        for lattice, _, scale in s1.lattice.find_all_mappings(s2.lattice, ltol=matcher.ltol, atol=matcher.angle_tol, skip_rotation_matrix=True):
            if abs(abs(np.linalg.det(scale)) - 1) <= 0.5:
                assert any(np.allclose(lattice.matrix, m, atol=1e-6) for m in ours)
    assert rejected >= 2
