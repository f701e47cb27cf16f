"""The bounds on what one request may ask of motif_screen, checked before anything is allocated.

Every number a user (or a stored document) can give that decides how much memory or time a
call takes has a limit here, with the reason for its value; readers, the CLI and the library
check them first, so an absurd value is one clear message instead of a 256 GB allocation, a
run that never ends or an overflow deep inside a library. The README lists them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import SupportsInt, cast

import numpy as np

from motif_screen.errors import InputError
from motif_screen.messages import quoted

__all__ = [
    "Bound",
    "MAX_ATOMS_PER_STRUCTURE",
    "MAX_CIF_EXPANDED_SITES",
    "MAX_STRUCTURE_FILE_BYTES",
    "MAX_LATTICE_LENGTH",
    "MAX_ABS_FRACTIONAL_COORDINATE",
    "MAX_NEIGHBOUR_SEARCH_IMAGES",
    "MAX_DECODED_PER_CALL",
    "STRUCTURES_PER_CALL",
    "CANDIDATES_PER_ROUND",
    "CHUNK_SIZE",
    "DECODE_CANDIDATES",
    "FLOW_STEPS",
    "TEMPERATURE",
    "PERTURB_SCALE",
    "SEED",
    "check_atom_count",
    "check_file_size",
    "geometry_problem",
    "check_geometry",
]

# --- structures -------------------------------------------------------------------------------
# The shipped decoders emit at most a few dozen atoms and the CDVAE benchmarks stop at 52; the
# encoder, CHGNet and the validity checks handle 2,000 atoms in seconds. pymatgen's CIF parser
# is quadratic in the atom count (5,000 atoms 3.5 s, 50,000 atoms 6 min on these machines).
MAX_ATOMS_PER_STRUCTURE = 2_000
# A CIF block's atom-site rows times its symmetry operations bounds the atoms it expands to;
# checked before pymatgen expands them (special positions make the true count smaller).
MAX_CIF_EXPANDED_SITES = 4 * MAX_ATOMS_PER_STRUCTURE
# One structure file (CIF, POSCAR, extxyz, JSON, CSV). A perov-5 split of 3,785 structures is
# 3.7 MB; this is about 130,000 such structures, and the largest text a reader holds in memory.
MAX_STRUCTURE_FILE_BYTES = 128 * 2**20
# Slabs with vacuum and molecules in a box stay well below 1,000 Å; beyond it a cell is an error.
MAX_LATTICE_LENGTH = 1_000.0  # Å, also the largest extent of a molecule
# Wrapped positions lie in [0, 1); unwrapped trajectories wander a few cells. At 1e20 a float
# holds no position at all.
MAX_ABS_FRACTIONAL_COORDINATE = 1_000.0
# Atom images a periodic neighbour search may visit (atoms × images of the cell within reach):
# bounds its memory for cells so thin that millions of images fall inside the search radius.
MAX_NEIGHBOUR_SEARCH_IMAGES = 10_000_000


@dataclass(frozen=True)
class Bound:
    """The allowed values of one request parameter: ``low`` to ``high`` (``low`` excluded when
    ``low_open``), integers only when ``integer``."""

    low: float
    high: float
    integer: bool = False
    low_open: bool = False

    def describe(self) -> str:
        if self.integer:
            return f"an integer between {self.low:,} and {self.high:,}"
        if self.low_open:
            return f"a number above {self.low:g} and at most {self.high:g}"
        return f"a number between {self.low:g} and {self.high:g}"

    def check(self, value, name: str = ""):
        """``value`` as an int or float inside the bound; InputError naming ``name`` otherwise
        (without a name the message starts with "must be", as argparse wants it)."""
        subject = f"{name} must be" if name else "must be"
        number = self._number(value, subject)
        if self.low < number if self.low_open else self.low <= number:
            if number <= self.high:
                return number
            side = f"at most {self.high:,}" if self.integer else f"at most {self.high:g}"
        else:
            side = ("above " if self.low_open else "at least ") + (f"{self.low:,}" if self.integer else f"{self.low:g}")
        raise InputError(f"{subject} {side} ({self.describe()}), got {_show(number)}")

    def _number(self, value, subject: str):
        if isinstance(value, bool):
            raise InputError(f"{subject} {self.describe()}, got {value!r}")
        try:
            if isinstance(value, str):
                number = int(value.strip()) if self.integer else float(value)
            elif self.integer and isinstance(value, numbers.Real) and float(value).is_integer():
                # the Reals met here (int, float, Fraction, NumPy scalars) all have __int__; typeshed's
                # numbers.Real does not declare it
                number = int(cast(SupportsInt, value))
            elif self.integer:
                raise ValueError
            else:
                number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{subject} {self.describe()}, got {quoted(value)}") from None
        if not self.integer and not math.isfinite(number):
            raise InputError(f"{subject} a finite number ({self.describe()}), got {number}")
        return number


def _show(number) -> str:
    text = f"{number:,}" if isinstance(number, int) else f"{number:g}"
    return quoted(text, 60) if len(text) > 60 else text


# --- request parameters -----------------------------------------------------------------------
# More than 100,000 structures in one call is a mistake (a million CIF files), not a plan.
STRUCTURES_PER_CALL = Bound(1, 100_000, integer=True)
# Candidates a campaign round proposes, generated in chunks of at most CHUNK_SIZE.
CANDIDATES_PER_ROUND = Bound(1, 1_000_000, integer=True)
CHUNK_SIZE = Bound(1, 10_000, integer=True)
# Structures decoded per latent to keep the best (default 8); beyond 64 it costs time, not quality.
DECODE_CANDIDATES = Bound(1, 64, integer=True)
# Decoded structures per call (structures × candidates), the real cost of a generate request.
MAX_DECODED_PER_CALL = 1_000_000
# Euler steps of the decoder's flow (the shipped models use 50); 1,000 is 20 times that.
FLOW_STEPS = Bound(1, 1_000, integer=True)
# The prior's spread as a factor: at 10 most samples are already invalid; at 1e30 the decoder
# gets cells with zero volume.
TEMPERATURE = Bound(0.0, 10.0, low_open=True)
# perturb's step in prior units: 1 wanders as far as the whole prior.
PERTURB_SCALE = Bound(0.0, 10.0)
# numpy's legacy generator takes seeds below 2**32; torch's take 64 bits.
SEED = Bound(0, 2**32 - 1, integer=True)


# --- checks -----------------------------------------------------------------------------------
def check_atom_count(count: int, where: str) -> None:
    """InputError when ``where`` declares more atoms than one structure may have."""
    if count > MAX_ATOMS_PER_STRUCTURE:
        raise InputError(f"{where} declares {count:,} atoms; a structure may have at most {MAX_ATOMS_PER_STRUCTURE:,}.")


def check_file_size(size: int, where: str) -> None:
    """InputError when a structure file is larger than :data:`MAX_STRUCTURE_FILE_BYTES`."""
    if size > MAX_STRUCTURE_FILE_BYTES:
        raise InputError(
            f"{where} is {size / 2**20:,.1f} MiB; structure files may be at most "
            f"{MAX_STRUCTURE_FILE_BYTES // 2**20} MiB (split it into several files)."
        )


def geometry_problem(structure) -> str | None:
    """Why a pymatgen ``Structure``/``Molecule`` is outside these limits, or ``None``.

    Atom count, finite numbers, lattice vectors up to :data:`MAX_LATTICE_LENGTH`, a cell with
    volume, fractional coordinates within :data:`MAX_ABS_FRACTIONAL_COORDINATE`; a molecule no
    larger than :data:`MAX_LATTICE_LENGTH`. Cheap: no neighbour search, no overflow.
    """
    count = len(structure)
    if count > MAX_ATOMS_PER_STRUCTURE:
        return f"{count:,} atoms, more than the {MAX_ATOMS_PER_STRUCTURE:,} a structure may have"
    with np.errstate(all="ignore"):
        if hasattr(structure, "lattice"):
            return _cell_problem(
                np.asarray(structure.lattice.matrix, dtype=float),
                np.asarray(structure.frac_coords, dtype=float).reshape(-1, 3),
            )
        coords = np.asarray(structure.cart_coords, dtype=float).reshape(-1, 3)
        if not np.isfinite(coords).all():
            return "NaN or infinite coordinates"
        extent = float((coords.max(0) - coords.min(0)).max()) if len(coords) else 0.0
        if extent > MAX_LATTICE_LENGTH:
            return f"the molecule spans {extent:.3g} Å, more than {MAX_LATTICE_LENGTH:,.0f} Å"
    return None


def _cell_problem(matrix: np.ndarray, frac: np.ndarray) -> str | None:
    if not (np.isfinite(matrix).all() and np.isfinite(frac).all()):
        return "NaN or infinite coordinates or lattice"
    scale = np.abs(matrix).max(axis=1)  # lengths without overflow: 1e300 Å is reported as 1e+300, not inf
    lengths = scale * np.linalg.norm(matrix / np.where(scale > 0, scale, 1.0)[:, None], axis=1)
    if lengths.max() > MAX_LATTICE_LENGTH:
        axis = int(lengths.argmax())
        return f"lattice vector {'abc'[axis]} is {lengths[axis]:.3g} Å long, more than {MAX_LATTICE_LENGTH:,.0f} Å"
    if abs(np.linalg.det(matrix)) < 1e-6:
        return "lattice vectors are linearly dependent (zero cell volume)"
    if len(frac) and np.abs(frac).max() > MAX_ABS_FRACTIONAL_COORDINATE:
        site, column = np.unravel_index(int(np.abs(frac).argmax()), frac.shape)
        return (
            f"fractional coordinate {frac[site, column]:.3g} of site {site} is outside "
            f"±{MAX_ABS_FRACTIONAL_COORDINATE:,.0f}"
        )
    return None


def check_geometry(structure, where: str) -> None:
    """InputError naming ``where`` when :func:`geometry_problem` finds one."""
    problem = geometry_problem(structure)
    if problem:
        raise InputError(f"{where} is outside motif_screen's limits: {problem}.")
