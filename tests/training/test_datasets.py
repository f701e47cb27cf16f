"""The one CSV reader of training data: encodings, bad CIF cells, label columns, and why rows fail."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from motif_screen.errors import InputError
from motif_screen.training.datasets import load_csv


def cifs(n: int) -> list[str]:
    return [str(CifWriter(Structure(Lattice.cubic(3.9 + 0.05 * i), ["Sr", "Ti", "O", "O", "O"],
                                    [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])))
            for i in range(n)]


def write(tmp_path, columns: dict, encoding: str = "utf-8", name: str = "data.csv"):
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False, encoding=encoding)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_utf8_with_or_without_bom_and_utf16_are_read_alike(tmp_path, encoding):
    path = write(tmp_path, {"material_id": ["a", "b"], "cif": cifs(2), "heat": [0.5, -1.0]}, encoding)
    data = load_csv(path, ["heat"])
    assert data.names == ["a", "b"] and data.targets == {"heat": [0.5, -1.0]}
    assert [s.composition.reduced_formula for s in data.structures] == ["SrTiO3", "SrTiO3"]


def test_text_in_another_encoding_is_refused_clearly(tmp_path):
    path = tmp_path / "latin1.csv"  # legacy 8-bit text is read (old CIFs carry accented author names) ...
    path.write_bytes("cif,heat\n\"data_é\",1.0\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"no usable structures .*row 2: .*structure"):  # ... and its content judged
        load_csv(path, ["heat"])
    path.write_bytes("cif,heat\n".encode("utf-16-le"))  # UTF-16 without its byte-order mark
    with pytest.raises(InputError, match="NUL bytes"):
        load_csv(path, ["heat"])


def test_a_number_in_the_cif_column_is_said_to_be_no_cif(tmp_path):
    path = write(tmp_path, {"cif": ["42"], "heat": [1.0]})
    with pytest.raises(InputError) as info:
        load_csv(path, ["heat"])
    message = str(info.value)
    assert "not a CIF" in message and "'42'" in message and "row 2" in message and "empty" not in message


def test_rows_that_cannot_be_read_are_skipped_with_their_reason(tmp_path):
    good = cifs(3)
    path = write(tmp_path, {"material_id": ["a", "b", "c", "d", "e"],
                            "cif": [good[0], "42", "", "data_x\n_cell_length_a oops\n", good[1]], "heat": [1, 2, 3, 4, 5]})
    data = load_csv(path, ["heat"])
    assert data.names == ["a", "e"] and data.targets["heat"] == [1.0, 5.0]
    assert len(data.skipped) == 3
    assert data.skipped[0].startswith("row 3 (b): the cif cell is not a CIF")
    assert data.skipped[1] == "row 4 (c): the cif cell is empty"
    assert data.skipped[2].startswith("row 5 (d): cannot be read as a structure")
    assert "3 rows skipped" in data.description


def test_no_usable_structure_says_which_rows_failed_and_why(tmp_path):
    path = write(tmp_path, {"cif": ["42", "hello", "", "7", "8"], "heat": [1, 2, 3, 4, 5]})
    with pytest.raises(InputError) as info:
        load_csv(path, ["heat"])
    message = str(info.value)
    assert message.startswith(f"no usable structures in {path}: all 5 rows failed: row 2: the cif cell is not a CIF")
    assert "row 3: the cif cell is not a CIF ('hello'" in message and "row 4: the cif cell is empty" in message
    assert message.endswith("and 2 more")


def test_a_label_column_without_any_number_is_refused(tmp_path):
    path = write(tmp_path, {"cif": cifs(3), "heat": [None, None, None]})
    with pytest.raises(InputError, match="column heat of .* has no numeric value"):
        load_csv(path, ["heat"])
    path = write(tmp_path, {"cif": cifs(2), "heat": ["n/a", "unknown"]})
    with pytest.raises(InputError, match="column heat of .* has no numeric value"):
        load_csv(path, ["heat"])


def test_non_numeric_labels_name_their_rows_and_empty_cells_are_missing(tmp_path):
    path = write(tmp_path, {"cif": cifs(4), "heat": ["1.5", "abc", "", "2"]})
    with pytest.raises(InputError, match=r"column heat of .* holds non-numeric values in row 3 \('abc'\)"):
        load_csv(path, ["heat"])
    path = write(tmp_path, {"cif": cifs(3), "heat": ["1.5", "", "2"]})
    values = load_csv(path, ["heat"]).targets["heat"]
    assert values[0] == 1.5 and math.isnan(values[1]) and values[2] == 2.0
