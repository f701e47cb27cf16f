"""One data-fingerprint scheme: order-independent, the same for every input type, and its migration."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Molecule, Structure

from motif_screen.errors import InputError
from motif_screen.graphs import to_graph
from motif_screen.training.fingerprint import data_fingerprint, migrate_fingerprint


def crystals():
    return [Structure(Lattice.cubic(a), [x, "Ti", "O", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
            for a, x in ((3.9, "Sr"), (4.0, "Ba"), (3.84, "Ca"))]


def test_the_fingerprint_is_a_function_of_the_pairs_not_their_order():
    structures, values = crystals(), [0.1, -0.5, 2.0]
    a = data_fingerprint(structures, {"heat": values})
    assert a.startswith("v3:") and len(a) == 3 + 16
    assert a == data_fingerprint(structures[::-1], {"heat": values[::-1]})
    assert a != data_fingerprint(structures, {"heat": [0.1, -0.5, 2.1]})
    assert a != data_fingerprint(structures, {"energy": values})  # the label's name counts
    assert a != data_fingerprint(structures + structures[:1], {"heat": values + values[:1]})  # so does a repeat
    nan = data_fingerprint(structures, {"heat": [0.1, None, 2.0]})
    assert nan == data_fingerprint(structures, {"heat": [0.1, float("nan"), 2.0]}) != a
    with pytest.raises(InputError, match="2 values for 3 structures"):
        data_fingerprint(structures, {"heat": values[:2]})


def test_ase_atoms_and_graphs_fingerprint_as_their_pymatgen_structure():
    structures, values = crystals(), {"heat": [0.1, -0.5, 2.0]}
    expected = data_fingerprint(structures, values)
    assert data_fingerprint([s.to_ase_atoms() for s in structures], values) == expected
    assert data_fingerprint([to_graph(s, 4.0) for s in structures], values) == expected
    water = Molecule(["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    assert data_fingerprint([to_graph(water, 4.0)], {"mu": [1.8]}) == data_fingerprint([water], {"mu": [1.8]})


def test_stored_fingerprints_are_tagged_with_their_scheme_or_recomputed():
    structures, values = crystals(), {"heat": [0.1, -0.5, 2.0]}
    current = data_fingerprint(structures, values)
    assert migrate_fingerprint(current) == current
    assert migrate_fingerprint("0123456789abcdef") == "legacy-sha256:0123456789abcdef"  # training runs, in order
    assert migrate_fingerprint("0123456789abcdef0123") == "legacy-sha1:0123456789abcdef0123"  # campaign fine-tuning
    assert migrate_fingerprint("f1") == "unknown:f1"
    assert migrate_fingerprint(None) is None
    assert migrate_fingerprint("v2:0123456789abcdef") == "v2:0123456789abcdef"  # the earlier structure keys
    assert migrate_fingerprint("v2:0123456789abcdef", structures, values) == current
    for value in ("legacy-sha1:0123456789abcdef0123", "unknown:f1"):
        assert migrate_fingerprint(value) == value  # a second migration changes nothing
    assert migrate_fingerprint("0123456789abcdef", structures, values) == current
    assert np.all([migrate_fingerprint(migrate_fingerprint(v)) == migrate_fingerprint(v) for v in ("abc", "0" * 16)])
