"""Reference crystals built with pymatgen, each with a textbook coordination environment."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def crystals():
    from pymatgen.core import Lattice, Structure

    return {
        "SrTiO3": Structure(
            Lattice.cubic(3.905),
            ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
        "NaCl": Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "ZnS": Structure.from_spacegroup("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        "Si": Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]),
        "CsCl": Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "Cu": Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]]),
        # rutile: Ti in a (slightly distorted) octahedron of O (4 × 1.95 Å + 2 × 1.98 Å)
        "TiO2": Structure.from_spacegroup(
            "P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3048, 0.3048, 0]]
        ),
        # MoS2 (2H): Mo in trigonal prisms of S
        "MoS2": Structure.from_spacegroup(
            "P6_3/mmc", Lattice.hexagonal(3.16, 12.29), ["Mo", "S"], [[1 / 3, 2 / 3, 0.25], [1 / 3, 2 / 3, 0.621]]
        ),
    }
