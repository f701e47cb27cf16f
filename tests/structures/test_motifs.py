import json

import numpy as np
import pytest

from motif_screen.errors import InputError
from motif_screen.structures.motifs import (
    ENVIRONMENT_NAMES,
    ENVIRONMENTS,
    MotifFilter,
    motif_labels,
    motif_summary,
    parse_motif_filter,
    site_motifs,
)


def _env(structure, element, method="angles"):
    found = {(m.environment, m.cn, tuple(sorted(m.ligands))) for m in site_motifs(structure, method=method) if m.element == element}
    assert len(found) == 1, found
    return found.pop()


@pytest.mark.parametrize("method", ["angles", "lsop"])
@pytest.mark.parametrize(
    "name, element, expected",
    [
        ("SrTiO3", "Ti", ("octahedral", 6, ("O",))),
        ("SrTiO3", "Sr", ("cuboctahedral", 12, ("O",))),
        ("NaCl", "Na", ("octahedral", 6, ("Cl",))),
        ("NaCl", "Cl", ("octahedral", 6, ("Na",))),
        ("ZnS", "Zn", ("tetrahedral", 4, ("S",))),
        ("ZnS", "S", ("tetrahedral", 4, ("Zn",))),
        ("Si", "Si", ("tetrahedral", 4, ("Si",))),
        ("CsCl", "Cs", ("cubic", 8, ("Cl",))),
        ("Cu", "Cu", ("cuboctahedral", 12, ("Cu",))),
        ("TiO2", "Ti", ("octahedral", 6, ("O",))),
    ],
)
def test_textbook_environments(crystals, name, element, expected, method):
    assert _env(crystals[name], element, method) == expected


def test_trigonal_prism_is_not_an_octahedron(crystals):
    assert _env(crystals["MoS2"], "Mo") == ("trigonal_prismatic", 6, ("S",))


def test_distorted_octahedron_is_still_octahedral(crystals):
    """Off-centre Ti (1.75 / 2.15 Å bonds) and a 6% tetragonal strain, like a ferroelectric BaTiO3."""
    from pymatgen.core import Lattice, Structure

    s = Structure(
        Lattice.tetragonal(3.90, 4.14),
        ["Ba", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.55], [0.5, 0.5, 0.02], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    rng = np.random.default_rng(1)
    for i in range(len(s)):
        s.translate_sites([i], rng.normal(scale=0.03, size=3), frac_coords=False)
    [ti] = [m for m in site_motifs(s) if m.element == "Ti"]
    assert ti.environment == "octahedral" and ti.cn == 6 and ti.ligands == {"O": 6}
    assert 0.5 < ti.score < 1.0  # recognisably octahedral, but not ideal
    assert "Ti:octahedral:O" in motif_labels(s)


def test_molecule_environments():
    from ase.build import molecule
    from pymatgen.io.ase import AseAtomsAdaptor

    methane = AseAtomsAdaptor.get_molecule(molecule("CH4"))
    carbon = [m for m in site_motifs(methane) if m.element == "C"][0]
    assert (carbon.environment, carbon.cn) == ("tetrahedral", 4)
    co2 = AseAtomsAdaptor.get_molecule(molecule("CO2"))
    assert [m.environment for m in site_motifs(co2) if m.element == "C"] == ["linear"]


def test_labels_and_summary(crystals):
    labels = motif_labels(crystals["SrTiO3"])
    assert {"Ti:octahedral", "Ti:octahedral:O", "Sr:cuboctahedral:O"} <= set(labels)
    summary = motif_summary(crystals["SrTiO3"])
    assert json.loads(json.dumps(summary)) == summary  # stored as-is on Candidate.motifs
    assert summary["labels"] == labels
    assert summary["environments"]["Ti"] == {"octahedral": 1}
    assert len(summary["sites"]) == 5


def test_mixed_ligands_give_a_joined_label():
    from pymatgen.core import Lattice, Structure

    s = Structure(
        Lattice.cubic(4.0), ["Sr", "Ta", "O", "O", "N"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )
    labels = motif_labels(s)
    assert "Ta:octahedral:N+O" in labels and "Ta:octahedral" in labels
    assert parse_motif_filter("Ta:oct:O+N").matches(s)


def test_parse_motif_filter_is_canonical(crystals):
    f = parse_motif_filter(" ti : Octahedra : o ")
    assert f == MotifFilter("Ti", "octahedral", ("O",)) and f.label == "Ti:octahedral:O"
    assert parse_motif_filter("Ti:octahedral").label == "Ti:octahedral"
    assert parse_motif_filter("Cu:square planar").environment == "square_planar"
    assert parse_motif_filter("Ce:cn9").environment == "cn9"
    assert f.matches(crystals["SrTiO3"])
    assert f.matches(["Ti:octahedral:O"]) and not f.matches(["Ti:octahedral"])
    assert f.matches({"labels": ["Ti:octahedral:O"]})
    assert not f.matches(crystals["NaCl"])
    assert not parse_motif_filter("Zn:octahedral:S").matches(crystals["ZnS"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("Xx:octahedral:O", "Unknown element"),
        ("Ti:octahedrall:O", "Unknown coordination environment"),
        ("Ti:octahedral:Qq", "Unknown element"),
        ("Ti", "must look like"),
        ("", "Empty motif filter"),
        ("Ti:octahedral:O:extra", "must look like"),
    ],
)
def test_bad_motif_filters(text, message):
    with pytest.raises(InputError, match=message):
        parse_motif_filter(text)


def test_vocabulary_is_consistent():
    from pymatgen.analysis.local_env import cn_opt_params

    from motif_screen.structures.motifs import _template_vectors

    for cn, shapes in cn_opt_params.items():
        ours = {pmg for n, pmg in ENVIRONMENTS.values() if n == cn and pmg}
        assert ours == set(shapes), cn  # every pymatgen shape has a name here
    templates = _template_vectors()
    for name, (cn, _) in ENVIRONMENTS.items():
        if cn >= 2:
            assert len(templates[name]) == cn, name
    assert len(set(ENVIRONMENT_NAMES)) == len(ENVIRONMENT_NAMES)


def test_ideal_templates_classify_as_themselves():
    from pymatgen.core import Molecule

    from motif_screen.structures.motifs import _template_vectors

    for name, vectors in _template_vectors().items():
        mol = Molecule(["U"] + ["H"] * len(vectors), np.vstack([[0, 0, 0], 2.0 * vectors]))
        centre = site_motifs(mol, shell_tolerance=0.01)[0]
        assert centre.cn == len(vectors) and centre.environment == name and centre.score > 0.999, name


def test_motifs_are_fast_enough_for_screening(crystals):
    """The screen handles ~1,000 five-atom candidates: budget ≤ 15 ms each even on a busy machine."""
    import time

    s = crystals["SrTiO3"]
    site_motifs(s)
    start = time.perf_counter()
    for _ in range(50):
        motif_labels(s)
    assert (time.perf_counter() - start) / 50 < 0.015
