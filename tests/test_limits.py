"""The documented limits: bounds with clear messages, geometry checks without overflow, short quotes."""

from __future__ import annotations

import math

import pytest
from pymatgen.core import Lattice, Molecule, Structure

from motif_screen import limits
from motif_screen.errors import InputError
from motif_screen.messages import one_line, shorten


def _perovskite(lattice=None):
    return Structure(lattice or Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


@pytest.mark.parametrize(
    "bound, value, message",
    [
        (limits.FLOW_STEPS, "0", "at least 1 (an integer between 1 and 1,000), got 0"),
        (limits.FLOW_STEPS, "-3", "at least 1"),
        (limits.FLOW_STEPS, "1000000000", "at most 1,000"),
        (limits.FLOW_STEPS, "2.5", "an integer between 1 and 1,000, got '2.5'"),
        (limits.STRUCTURES_PER_CALL, "1000000000", "at most 100,000"),
        (limits.DECODE_CANDIDATES, "1000000000", "at most 64"),
        (limits.TEMPERATURE, "1e30", "at most 10"),
        (limits.TEMPERATURE, "0", "above 0"),
        (limits.TEMPERATURE, "nan", "finite number"),
        (limits.PERTURB_SCALE, "inf", "finite number"),
        (limits.SEED, str(2**70), "at most 4,294,967,295"),
        (limits.FLOW_STEPS, "9" * 5000, "characters in all"),
    ],
)
def test_bounds_refuse_with_the_range_in_the_message(bound, value, message):
    with pytest.raises(InputError) as info:
        bound.check(value, "--x")
    text = str(info.value)
    assert text.startswith("--x must be") and message in text and len(text) < 400


def test_bounds_accept_their_ends():
    assert limits.FLOW_STEPS.check("1000") == 1000 and limits.TEMPERATURE.check(10) == 10.0
    assert limits.PERTURB_SCALE.check("0") == 0.0 and limits.SEED.check(0) == 0


@pytest.mark.parametrize(
    "structure, problem",
    [
        (_perovskite(Lattice.cubic(1e300)), "lattice vector a is 1e+300 Å long"),
        (_perovskite(Lattice([[1e308, 1e308, 0], [0, 4, 0], [0, 0, 4]])), "lattice vector a is 1.41e+308 Å long"),
        (_perovskite(Lattice([[4, 0, 0], [8, 0, 0], [0, 0, 4]])), "linearly dependent"),
        (Structure(Lattice.cubic(3.9), ["Sr", "O"], [[1e20, 0, 0], [0.5, 0.5, 0.5]]), "fractional coordinate 1e+20"),
        (Structure(Lattice.cubic(3.9), ["Sr", "O"], [[math.nan, 0, 0], [0.5, 0.5, 0.5]]), "NaN"),
        (Molecule(["H", "H"], [[0, 0, 0], [5000, 0, 0]]), "the molecule spans 5e+03 Å"),
        (Structure(Lattice.cubic(40.0), ["Cu"] * 2001, [[i / 2001, 0, 0] for i in range(2001)]), "2,001 atoms"),
    ],
)
def test_geometry_outside_the_limits_is_named(structure, problem):
    assert problem in limits.geometry_problem(structure)
    with pytest.raises(InputError, match="outside motif_screen's limits"):
        limits.check_geometry(structure, "seed.cif")


def test_ordinary_structures_are_inside_the_limits():
    assert limits.geometry_problem(_perovskite()) is None
    assert limits.geometry_problem(Molecule(["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])) is None


def test_long_quotes_keep_start_end_and_length():
    text = "Ba" * 50_000
    short = shorten(text)
    assert len(short) <= 200 and short.startswith("BaBa") and short.endswith("Ba") and "100,000 characters in all" in short
    assert shorten("SrTiO3") == "SrTiO3"
    line = one_line("first line\n  second\r\nthird " + "x" * 5000)
    assert "\n" not in line and "\r" not in line and line.startswith("first line / second / third") and len(line) <= 1000
