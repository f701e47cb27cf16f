import json

import numpy as np
import pytest

from motif_screen.errors import InputError
from motif_screen.structures.io import read_structures, structure_from_any, write_cifs


def test_cif_poscar_extxyz_json_roundtrip(tmp_path, crystals):
    from ase.io import write as ase_write
    from pymatgen.io.ase import AseAtomsAdaptor

    sto = crystals["SrTiO3"]
    written = write_cifs([("sto", sto), ("nacl", crystals["NaCl"])], tmp_path / "cifs")
    assert [p.name for p in written] == ["sto.cif", "nacl.cif"]
    assert not list((tmp_path / "cifs").glob("*.tmp")), "temporary files must be renamed away"
    sto.to(filename=str(tmp_path / "POSCAR"))
    ase_write(str(tmp_path / "two.extxyz"), [AseAtomsAdaptor.get_atoms(sto), AseAtomsAdaptor.get_atoms(crystals["ZnS"])])
    (tmp_path / "s.json").write_text(json.dumps(sto.as_dict()))

    for path in [tmp_path / "cifs" / "sto.cif", tmp_path / "POSCAR", tmp_path / "s.json"]:
        [(ident, s)] = read_structures(path)
        assert s.composition.reduced_formula == "SrTiO3", path
        assert np.isclose(s.volume, sto.volume, rtol=1e-4)
    frames = read_structures(tmp_path / "two.extxyz")
    assert [i for i, _ in frames] == ["two:0", "two:1"]
    assert frames[1][1].composition.reduced_formula == "ZnS"

    folder = read_structures(tmp_path / "cifs")
    assert sorted(i for i, _ in folder) == ["nacl", "sto"]
    both = read_structures([tmp_path / "POSCAR", tmp_path / "cifs" / "nacl.cif"])
    assert len(both) == 2


def test_cdvae_csv_ids_and_bad_row(tmp_path, crystals):
    import pandas as pd
    from pymatgen.io.cif import CifWriter

    cifs = [str(CifWriter(crystals[k])) for k in ("SrTiO3", "NaCl")]
    pd.DataFrame({"material_id": ["mp-1", "mp-2"], "cif": cifs, "formation_energy": [0.1, 0.2]}).to_csv(tmp_path / "ok.csv")
    pairs = read_structures(tmp_path / "ok.csv")
    assert [i for i, _ in pairs] == ["mp-1", "mp-2"]
    assert pairs[1][1].composition.reduced_formula == "NaCl"

    pd.DataFrame({"material_id": ["a", "b"], "cif": [cifs[0], "data_broken\n_cell_length_a 1\n"]}).to_csv(tmp_path / "bad.csv")
    with pytest.raises(InputError, match=r"bad\.csv row 3"):
        read_structures(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("empty.cif", "", "is empty"),
        ("junk.cif", "this is not a cif\n", "junk.cif"),
        ("POSCAR", "title\n1.0\n3 0 0\n0 3 0\n", "POSCAR"),
    ],
)
def test_malformed_files_name_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_structures(path)


def test_unknown_element_is_rejected(tmp_path, crystals):
    from pymatgen.io.cif import CifWriter

    text = str(CifWriter(crystals["NaCl"])).replace("Na", "Xq")
    path = tmp_path / "xq.cif"
    path.write_text(text)
    with pytest.raises(InputError, match="xq.cif"):
        read_structures(path)


def test_missing_path_and_unsupported_type(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_structures(tmp_path / "nope.cif")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unsupported file type"):
        read_structures(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="no structure files"):
        read_structures(tmp_path)


def test_structure_from_any(crystals):
    from ase.build import molecule
    from pymatgen.core import Molecule, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    sto = crystals["SrTiO3"]
    assert structure_from_any(sto) is sto
    assert isinstance(structure_from_any(sto.as_dict()), Structure)
    assert isinstance(structure_from_any(AseAtomsAdaptor.get_atoms(sto)), Structure)
    water = structure_from_any(molecule("H2O"))
    assert isinstance(water, Molecule) and water.composition.reduced_formula == "H2O"
    assert isinstance(structure_from_any(water.as_dict()), Molecule)
    with pytest.raises(InputError, match="unsupported type"):
        structure_from_any(42)
    with pytest.raises(InputError, match="not a valid pymatgen structure dict"):
        structure_from_any({"lattice": "nonsense"})


def test_write_cifs_keeps_names_from_data_inside_the_folder(tmp_path, crystals):
    out = tmp_path / "a" / "out"
    written = write_cifs([("/../../../../x", crystals["NaCl"]), ("../.hidden", crystals["Si"])], out)
    assert [p.name for p in written] == ["x.cif", "hidden.cif"]
    assert sorted(p.name for p in out.iterdir()) == ["hidden.cif", "x.cif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"] and sorted(p.name for p in (tmp_path / "a").iterdir()) == ["out"]


def test_nothing_is_written_when_one_structure_cannot_be(tmp_path, crystals):
    from pymatgen.core import Molecule

    with pytest.raises(InputError, match="is a molecule"):
        write_cifs([("ok", crystals["NaCl"]), ("h2", Molecule(["H", "H"], [[0, 0, 0], [0.7, 0, 0]]))], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pymatgen_dicts_outside_the_limits_are_refused(crystals):
    big = crystals["NaCl"].as_dict()
    big["sites"] = big["sites"] * 300  # 2,400 sites: refused before pymatgen builds them
    with pytest.raises(InputError, match="declares 2,400 atoms"):
        structure_from_any(big, "doc")
    with pytest.raises(InputError, match="doc has no structure"):
        structure_from_any({}, "doc")
