#!/usr/bin/env python
"""Build the CHGNet reference set of the demo's chemical space: elements and competing binary phases.

What it makes
    ``motif_screen/oracles/chgnet_competing_phases.json``: ``{"metadata": {...}, "entries": [...]}``,
    the entries being pymatgen ``ComputedEntry`` (elements) and ``ComputedStructureEntry``
    (binaries) ``as_dict()``, all labelled ``run_type="CHGNet"`` with the CHGNet model version —
    the format ``motif-screen references add FILE --source chgnet`` and
    :func:`motif_screen.oracles.references.read_reference_entries` read. These are energies of a
    machine-learned potential (CHGNet, fitted to Materials Project GGA/GGA+U data with MP2020
    corrections), **not DFT**: they serve the CHGNet stand-in oracle's formation energies and
    convex hulls, never a DFT campaign's.

The chemical space
    * cations: the shipped perov-5 model's elements (``config.elements`` of
      ``motif_screen/pretrained/perov5_autoencoder.pt``) that are not anions;
    * anions: O, N, F, S, Cl, Se (``motif_screen.generation.families.ANIONS``) that the model has
      (perov-5's vocabulary has O, N, F, S);
    * a cation in each of its common positive oxidation states (pymatgen's
      ``Element.common_oxidation_states``) with each anion in its usual charge (O2-, S2-, Se2-,
      N3-, F-, Cl-) gives one binary stoichiometry, e.g. Ti4+ O2- -> TiO2, Mg2+ N3- -> Mg3N2;
    * ``--scope relevant`` (default) keeps the binaries whose cation charge can occur in a
      charge-balanced A B X3 of that anion with another cation of the vocabulary in a common state
      (q_A + q_B = 3|q_X|: fluorides of 1+ and 2+ cations, oxides and sulfides of 1+ to 5+,
      nitrides of 2+ to 7+): the phases an ABX3 candidate decomposes into. ``--scope all`` takes
      every common state (AlF3, TiF4, Mn2O7 ... too).

The prototypes (pymatgen's AFLOW prototype library, ``pymatgen.analysis.prototypes``, plus a
few built here from their space group and Wyckoff positions, see ``PROTOTYPES``)
    AX: rocksalt, CsCl, zincblende, wurtzite, NiAs, h-BN (nitrides), litharge PbO, cooperite PtS,
    tenorite CuO, GeS (for the cations they are known for); AX2: fluorite, rutile, CdI2, MoS2,
    cotunnite, alpha-cristobalite and alpha-quartz (small cations), baddeleyite (oxides);
    A2X: anti-fluorite, anti-CdI2, cuprite; A2X3: corundum, A-La2O3, bixbyite (large cations),
    tetradymite Bi2Te3 (sulfides); A3X2: anti-La2O3, anti-bixbyite; AX3: ReO3, AlF3, BiF3 (D0_3);
    A3X: Li3N, anti-ReO3 (Cu3N), Na3As; A2X5: V2O5; A3X4: beta-Si3N4, spinel (Mn3O4),
    Pt3O4; AX4: SnF4, SiF4. Stoichiometries without a prototype here (A3X5, A3X7, AX5, AX6, AX7,
    A2X7 ...) are listed in the metadata as skipped.

    Each prototype is decorated with the cation and anion and scaled isotropically so that its
    shortest cation-anion distance is the sum of their Shannon crystal radii (pymatgen's ionic
    radii), then relaxed with CHGNet, cell included (FIRE, ``--fmax``, ``--steps``). A relaxation
    whose structure collapses (two atoms closer than 0.9 Å) or whose volume changes more than
    threefold is rejected. Per composition the lowest energy per atom is kept; every polymorph's
    energy is listed in the metadata (``polymorphs``).

    The elements come from :func:`motif_screen.oracles.chgnet.elemental_reference_entries` (the
    table shipped with the package, else relaxed and cached), so that the elemental energies are
    exactly those the CHGNet oracle uses.

Resumable
    Every relaxation appends one JSON line to the work file (``--work``); a rerun skips the jobs
    already there (``--retry-failed`` runs failed ones again) and ``--minutes`` stops cleanly after
    a time budget. Work runs in priority order: the usual prototypes of the relevant binaries
    first, the others after. ``--assemble`` only writes the output from the work file.

Examples
    python scripts/make_chgnet_references.py --list                 # the work list, nothing run
    python scripts/make_chgnet_references.py --minutes 90 --log refs.log
    python scripts/make_chgnet_references.py --assemble             # write the shipped file

Measured (2-core machine, one torch thread): about 5-15 s per relaxation of a 2-14 atom cell,
40-80 s for the 40-atom bixbyites.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gzip
import json
import logging
import math
import os
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from pymatgen.analysis import prototypes as _aflow_module
from pymatgen.core import Composition, Element, Lattice, Species, Structure

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "motif_screen" / "pretrained" / "perov5_autoencoder.pt"
DEFAULT_OUT = ROOT / "motif_screen" / "oracles" / "chgnet_competing_phases.json"
DEFAULT_WORK = Path("chgnet_competing_phases.work.jsonl")

ANION_CHARGE = {"O": -2, "S": -2, "Se": -2, "N": -3, "F": -1, "Cl": -1}
MIN_DISTANCE = 0.9  # Å: a relaxed structure with two atoms closer than this has collapsed
MAX_VOLUME_RATIO = 3.0  # a relaxed cell more than 3x larger or smaller than its start has exploded or collapsed
FMAX = 0.05  # eV/Å, as the elemental references (motif_screen.oracles.chgnet.REFERENCE_FMAX)
STEPS = 300

log = logging.getLogger("make_chgnet_references")


# --------------------------------------------------------------------------------------------
# prototypes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prototype:
    """A binary structure type: where it comes from and which of its species is the cation ("A").

    ``aflow``: (AFLOW label, formula of pymatgen's example) in pymatgen's AFLOW prototype library;
    ``build``: a function returning the example structure instead. ``roles`` maps the example's
    elements to "A" (cation) and "X" (anion); an anti-structure swaps them. ``tier`` 1 runs for
    every composition of its stoichiometry, tier 2 only where ``when`` says (it gets the cation
    symbol, its charge, the anion and the cation/anion radius ratio).
    """

    name: str
    roles: dict
    aflow: tuple[str, str] | None = None
    build: object = None
    tier: int = 1
    when: object = None
    note: str = ""
    stoich: tuple[int, int] = field(default=(0, 0), compare=False)


@lru_cache(maxsize=1)
def _aflow_library() -> dict:
    path = Path(_aflow_module.__file__).with_name("aflow_prototypes.json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    out = {}
    for item in data:
        s = Structure.from_dict(item["snl"])
        out[(item["tags"]["aflow"], s.composition.reduced_formula)] = s
    return out


def _bixbyite() -> Structure:
    """In2O3 (Ia-3; Marezio 1966): In 8b, In 24d (x=0.4668), O 48e; primitive cell, 40 atoms."""
    s = Structure.from_spacegroup(
        "Ia-3",
        Lattice.cubic(10.117),
        ["In", "In", "O"],
        [[0.25, 0.25, 0.25], [0.4668, 0.0, 0.25], [0.3905, 0.1529, 0.3832]],
    )
    return s.get_primitive_structure()


def _v2o5() -> Structure:
    """V2O5 (Pmmn; a=11.51, b=3.564, c=4.368 Å): VO5 square pyramids, vanadyl V=O along c."""
    # Wyckoff positions of origin choice 2 shifted by (-1/4, -1/4, 0) to pymatgen's origin choice 1
    return Structure.from_spacegroup(
        "Pmmn",
        Lattice.orthorhombic(11.512, 3.564, 4.368),
        ["V", "O", "O", "O"],
        [[-0.1488, 0.0, 0.8917], [-0.1457, 0.0, 0.5311], [-0.3189, 0.0, 0.0029], [0.0, 0.0, 0.0012]],
    )


def _beta_si3n4() -> Structure:
    """beta-Si3N4 (P6_3/m; a=7.606, c=2.909 Å): Si 6h, N 6h, N 2c."""
    return Structure.from_spacegroup(
        "P6_3/m",
        Lattice.hexagonal(7.606, 2.909),
        ["Si", "N", "N"],
        [[0.1733, 0.7694, 0.25], [0.3323, 0.0314, 0.25], [1 / 3, 2 / 3, 0.25]],
    )


def _snf4() -> Structure:
    """SnF4 (I4/mmm; a=4.05, c=7.93 Å): layers of corner-sharing SnF6 octahedra."""
    s = Structure.from_spacegroup(
        "I4/mmm", Lattice.tetragonal(4.05, 7.93), ["Sn", "F", "F"], [[0, 0, 0], [0, 0.5, 0], [0, 0, 0.237]]
    )
    return s.get_primitive_structure()


def _small(ratio_max: float):
    return lambda el, q, x, ratio: ratio <= ratio_max


def _large(ratio_min: float):
    return lambda el, q, x, ratio: ratio >= ratio_min


def _cations(*symbols: str):
    return lambda el, q, x, ratio: el in symbols


def _anions(*symbols: str):
    return lambda el, q, x, ratio: x in symbols


def _all(*predicates):
    return lambda *a: all(p(*a) for p in predicates)


PROTOTYPES: tuple[Prototype, ...] = (
    # Within a stoichiometry, listed most common first: jobs run in that order (every composition gets
    # its likeliest structure before any gets its third).
    # AX
    Prototype("rocksalt", {"Na": "A", "Cl": "X"}, aflow=("AB_cF8_225_a_b", "NaCl")),
    Prototype("wurtzite", {"Zn": "A", "S": "X"}, aflow=("AB_hP4_186_b_b", "ZnS")),
    Prototype("zincblende", {"Zn": "A", "S": "X"}, aflow=("AB_cF8_216_c_a", "ZnS"), tier=2, when=_small(0.7)),
    Prototype("CsCl", {"Cs": "A", "Cl": "X"}, aflow=("AB_cP2_221_b_a", "CsCl"), tier=2, when=_large(0.7)),
    Prototype("NiAs", {"Ni": "A", "As": "X"}, aflow=("AB_hP4_194_c_a", "NiAs"), tier=2, when=_anions("S", "Se")),
    Prototype(
        "h-BN", {"B": "A", "N": "X"}, aflow=("AB_hP4_194_c_d", "BN"), tier=2, when=_all(_anions("N"), _small(0.5))
    ),
    Prototype(
        "litharge PbO", {"Pb": "A", "O": "X"}, aflow=("AB_tP4_129_a_c", "PbO"), tier=2, when=_cations("Pb", "Sn")
    ),
    Prototype(
        "cooperite PtS", {"Pt": "A", "S": "X"}, aflow=("AB_tP4_131_c_e", "PtS"), tier=2, when=_cations("Pt", "Pd", "Ni")
    ),
    Prototype("tenorite CuO", {"Cu": "A", "O": "X"}, aflow=("AB_mC8_15_c_e", "CuO"), tier=2, when=_cations("Cu", "Ag")),
    Prototype(
        "GeS",
        {"Ge": "A", "S": "X"},
        aflow=("AB_oP8_62_c_c", "GeS"),
        tier=2,
        when=_all(_cations("Ge", "Sn", "Pb"), _anions("S", "Se")),
    ),
    # AX2
    Prototype("rutile", {"Ti": "A", "O": "X"}, aflow=("A2B_tP6_136_f_a", "TiO2")),
    Prototype("fluorite", {"Ca": "A", "F": "X"}, aflow=("AB2_cF12_225_a_c", "CaF2")),
    Prototype("CdI2", {"Cd": "A", "I": "X"}, aflow=("AB2_hP3_164_a_d", "CdI2")),
    Prototype("MoS2 (2H)", {"Mo": "A", "S": "X"}, aflow=("AB2_hP6_194_c_f", "MoS2"), tier=2, when=_anions("S", "Se")),
    Prototype("alpha-quartz", {"Si": "A", "O": "X"}, aflow=("A2B_hP9_152_c_a", "SiO2"), tier=2, when=_small(0.45)),
    Prototype(
        "alpha-cristobalite", {"Si": "A", "O": "X"}, aflow=("A2B_tP12_92_b_a", "SiO2"), tier=2, when=_small(0.45)
    ),
    Prototype(
        "baddeleyite ZrO2",
        {"Zr": "A", "O": "X"},
        aflow=("A2B_mP12_14_2e_e", "ZrO2"),
        tier=2,
        when=_all(_anions("O"), lambda el, q, x, r: 0.55 <= r <= 0.85),
    ),
    Prototype("cotunnite PbCl2", {"Pb": "A", "Cl": "X"}, aflow=("A2B_oP12_62_2c_c", "PbCl2"), tier=2, when=_large(0.9)),
    # A2X
    Prototype("anti-fluorite", {"Ca": "X", "F": "A"}, aflow=("AB2_cF12_225_a_c", "CaF2")),
    Prototype("anti-CdI2", {"Cd": "X", "I": "A"}, aflow=("AB2_hP3_164_a_d", "CdI2")),
    Prototype("cuprite Cu2O", {"Cu": "A", "O": "X"}, aflow=("A2B_cP6_224_b_a", "Cu2O")),
    # A2X3
    Prototype("corundum", {"Al": "A", "O": "X"}, aflow=("A2B3_hR10_167_c_e", "Al2O3")),
    Prototype("A-La2O3", {"Ni": "A", "Al": "X"}, aflow=("A3B2_hP5_164_ad_d", "Al3Ni2")),
    Prototype("bixbyite", {"In": "A", "O": "X"}, build=_bixbyite, tier=2, when=_large(0.6)),
    Prototype(
        "tetradymite Bi2Te3",
        {"Bi": "A", "Te": "X"},
        aflow=("A2B3_hR5_166_c_ac", "Bi2Te3"),
        tier=2,
        when=_all(_cations("Bi", "Sb", "As"), _anions("S", "Se")),
    ),
    # A3X2
    Prototype("anti-La2O3", {"Ni": "X", "Al": "A"}, aflow=("A3B2_hP5_164_ad_d", "Al3Ni2")),
    Prototype("anti-bixbyite", {"In": "X", "O": "A"}, build=_bixbyite, tier=2, when=lambda *a: True),
    # AX3
    Prototype("ReO3", {"Re": "A", "O": "X"}, aflow=("A3B_cP4_221_d_a", "ReO3")),
    Prototype("AlF3", {"Al": "A", "F": "X"}, aflow=("AB3_hR8_155_c_de", "AlF3")),
    Prototype("BiF3 (D0_3)", {"Bi": "A", "F": "X"}, aflow=("AB3_cF16_225_a_bc", "BiF3")),
    # A3X
    Prototype("anti-ReO3 (Cu3N)", {"Re": "X", "O": "A"}, aflow=("A3B_cP4_221_d_a", "ReO3")),
    Prototype("Li3N", {"Li": "A", "N": "X"}, aflow=("A3B_hP4_191_bc_a", "Li3N")),
    Prototype("Na3As", {"Na": "A", "As": "X"}, aflow=("AB3_hP8_194_c_bf", "Na3As")),
    # A2X5
    Prototype("V2O5", {"V": "A", "O": "X"}, build=_v2o5),
    # A3X4
    Prototype("beta-Si3N4", {"Si": "A", "N": "X"}, build=_beta_si3n4),
    Prototype("spinel (Mn3O4)", {"Mn": "A", "O": "X"}, aflow=("A3B4_tI28_141_ad_h", "Mn3O4")),
    Prototype("Pt3O4", {"Pt": "A", "O": "X"}, aflow=("A4B3_cI14_229_c_b", "Pt3O4"), tier=2, when=_cations("Pt", "Pd")),
    # AX4
    Prototype("SnF4", {"Sn": "A", "F": "X"}, build=_snf4),
    Prototype("SiF4", {"Si": "A", "F": "X"}, aflow=("A4B_cI10_217_c_a", "SiF4")),
)


def example_structure(proto: Prototype) -> Structure:
    if proto.build is not None:
        return proto.build()
    return _aflow_library()[proto.aflow].copy()


def stoichiometry(proto: Prototype) -> tuple[int, int]:
    """(cations, anions) of the prototype's reduced formula, e.g. (1, 2) for rutile."""
    comp = example_structure(proto).composition
    a = sum(amt for el, amt in comp.items() if proto.roles[el.symbol] == "A")
    x = sum(amt for el, amt in comp.items() if proto.roles[el.symbol] == "X")
    g = math.gcd(int(a), int(x))
    return int(a) // g, int(x) // g


@lru_cache(maxsize=1)
def prototypes_by_stoichiometry() -> dict[tuple[int, int], list[Prototype]]:
    out: dict[tuple[int, int], list[Prototype]] = {}
    for proto in PROTOTYPES:
        out.setdefault(stoichiometry(proto), []).append(proto)
    return out


# --------------------------------------------------------------------------------------------
# radii and decoration
# --------------------------------------------------------------------------------------------


def ionic_radius(symbol: str, charge: int) -> float:
    """Shannon crystal radius (Å) from pymatgen, falling back to the element's average ionic radius."""
    try:
        with warnings.catch_warnings():  # pymatgen warns, then falls back to an average, for missing radii
            warnings.simplefilter("ignore")
            r = Species(symbol, charge).ionic_radius
    except (ValueError, KeyError):
        r = None
    if r is None:
        element = Element(symbol)
        r = float(element.average_ionic_radius) or float(element.atomic_radius or 1.5)
    return float(r)


def decorate(proto: Prototype, cation: str, anion: str, bond: float) -> Structure:
    """The prototype with the cation on its "A" sites and the anion on "X", shortest A-X distance = ``bond``."""
    s = example_structure(proto)
    s.replace_species({Element(el): Element(cation if role == "A" else anion) for el, role in proto.roles.items()})
    a_idx = [i for i, site in enumerate(s) if site.specie.symbol == cation]
    x_idx = [i for i, site in enumerate(s) if site.specie.symbol == anion]
    dists = s.distance_matrix[np.ix_(a_idx, x_idx)]
    shortest = float(dists.min())
    s.scale_lattice(s.volume * (bond / shortest) ** 3)
    return s


# --------------------------------------------------------------------------------------------
# the work list
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    formula: str
    prototype: str
    cation: str
    charge: int
    anion: str
    tier: int

    @property
    def key(self) -> str:
        return f"{self.formula}|{self.prototype}"


def model_elements(model_path: Path) -> list[str]:
    from motif_screen.model.checkpoint import load_autoencoder

    model = load_autoencoder(model_path)
    return [Element.from_Z(int(z)).symbol for z in model.config.elements]


def positive_states(symbol: str) -> tuple[int, ...]:
    return tuple(q for q in Element(symbol).common_oxidation_states if q > 0)


def binary_formula(cation: str, charge: int, anion: str) -> tuple[str, tuple[int, int]]:
    p = -ANION_CHARGE[anion]
    g = math.gcd(charge, p)
    n_a, n_x = p // g, charge // g
    return Composition({cation: n_a, anion: n_x}).reduced_formula, (n_a, n_x)


def relevant(cation: str, charge: int, anion: str, cations: list[str]) -> bool:
    """Can ``cation`` in this charge occur in a charge-balanced A B X3 with another cation of the vocabulary?"""
    need = 3 * -ANION_CHARGE[anion] - charge
    return any(need in positive_states(other) for other in cations if other != cation)


def work_list(cations: list[str], anions: list[str], scope: str, max_tier: int) -> tuple[list[Job], list[dict]]:
    """(jobs in priority order, binaries skipped for want of a prototype)."""
    jobs, skipped = [], []
    table = prototypes_by_stoichiometry()
    for anion in anions:
        for cation in cations:
            for q in positive_states(cation):
                if scope == "relevant" and not relevant(cation, q, anion, cations):
                    continue
                formula, stoich = binary_formula(cation, q, anion)
                protos = table.get(stoich, [])
                if not protos:
                    skipped.append({"formula": formula, "stoichiometry": f"A{stoich[0]}X{stoich[1]}"})
                    continue
                ratio = ionic_radius(cation, q) / ionic_radius(anion, ANION_CHARGE[anion])
                for proto in protos:
                    if proto.tier > max_tier or (proto.when is not None and not proto.when(cation, q, anion, ratio)):
                        continue
                    jobs.append(Job(formula, proto.name, cation, q, anion, proto.tier))
    # priority: tier, then fewer atoms (cheap first), then formula; keep each (formula, prototype) once
    seen, unique = set(), []
    for job in jobs:
        if job.key not in seen:
            seen.add(job.key)
            unique.append(job)
    sizes = {p.name: len(example_structure(p)) for p in PROTOTYPES}
    rank = {p.name: i for protos in table.values() for i, p in enumerate(protos)}
    unique.sort(key=lambda j: (j.tier, sizes[j.prototype] > 20, rank[j.prototype], j.formula))
    return unique, skipped


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------


def read_work(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except ValueError:  # a line cut by an interruption
            continue
        done[item["key"]] = item
    return done


def sane(initial: Structure, final: Structure) -> str | None:
    """Why a relaxed structure is rejected, or None."""
    if len(final) > 1:
        d = final.distance_matrix
        np.fill_diagonal(d, np.inf)
        if float(d.min()) < MIN_DISTANCE:
            return f"collapsed: two atoms {float(d.min()):.2f} Å apart"
    ratio = final.volume / initial.volume
    if not (1 / MAX_VOLUME_RATIO <= ratio <= MAX_VOLUME_RATIO):
        return f"volume changed {ratio:.2f}x"
    return None


def run_job(job: Job, fmax: float, steps: int) -> dict:
    from motif_screen.oracles import chgnet

    proto = next(p for p in PROTOTYPES if p.name == job.prototype)
    bond = ionic_radius(job.cation, job.charge) + ionic_radius(job.anion, ANION_CHARGE[job.anion])
    record = {"key": job.key, "formula": job.formula, "prototype": job.prototype, "cation": job.cation}
    record.update(charge=job.charge, anion=job.anion, tier=job.tier, start_bond=round(bond, 4))
    start = time.perf_counter()
    try:
        structure = decorate(proto, job.cation, job.anion, bond)
        result = chgnet.chgnet_relax(structure, fmax=fmax, steps=steps)
    except Exception as exc:  # a failure is recorded with its reason, never as an energy
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - start)
        return record
    why = sane(structure, result["final_structure"])
    entry = chgnet.entry_of(result)
    entry.entry_id = f"chgnet-{result['model_version']}-{job.formula}-{job.prototype.replace(' ', '_')}"
    entry.data.update(
        prototype=job.prototype,
        converged=bool(result["converged"]),
        max_force=round(float(result["max_force"]), 4),
        relax_steps=int(result["steps"]),
        made_by="scripts/make_chgnet_references.py",
    )
    record.update(
        status="rejected" if why else "ok",
        error=why,
        energy_per_atom=result["energy_per_atom"],
        converged=bool(result["converged"]),
        max_force=float(result["max_force"]),
        steps=int(result["steps"]),
        seconds=time.perf_counter() - start,
        n_sites=len(structure),
        model_version=result["model_version"],
        entry=entry.as_dict(),
    )
    return record


def run(jobs: list[Job], work: Path, fmax: float, steps: int, minutes: float | None, retry_failed: bool) -> None:
    done = read_work(work)
    todo = [j for j in jobs if j.key not in done or (retry_failed and done[j.key]["status"] == "failed")]
    log.info("%d jobs, %d already in %s, %d to run", len(jobs), len(jobs) - len(todo), work, len(todo))
    t0 = time.perf_counter()
    work.parent.mkdir(parents=True, exist_ok=True)
    with work.open("a", encoding="utf-8") as fh:
        for i, job in enumerate(todo, start=1):
            elapsed = time.perf_counter() - t0
            if minutes is not None and elapsed > minutes * 60:
                log.info(
                    "time budget of %.0f min spent: stopping, %d jobs left (rerun to resume)",
                    minutes,
                    len(todo) - i + 1,
                )
                break
            record = run_job(job, fmax, steps)
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            rate = (time.perf_counter() - t0) / i
            log.info(
                "[%d/%d] %-10s %-22s %-8s %s %5.1f s  (elapsed %.1f min, ETA %.1f min)",
                i,
                len(todo),
                job.formula,
                job.prototype,
                record["status"],
                f"{record['energy_per_atom']:.4f} eV/atom {record['steps']:3d} steps"
                if "energy_per_atom" in record
                else record.get("error"),
                record["seconds"],
                (time.perf_counter() - t0) / 60,
                rate * (len(todo) - i) / 60,
            )


# --------------------------------------------------------------------------------------------
# assembling the shipped file
# --------------------------------------------------------------------------------------------


def assemble(
    jobs: list[Job], skipped: list[dict], work: Path, out: Path, elements: list[str], args: argparse.Namespace
) -> dict:
    import chgnet as chgnet_package

    from motif_screen.oracles import chgnet

    version = chgnet.model_version()
    done = read_work(work)
    wanted = {j.key for j in jobs}
    records = [r for k, r in done.items() if k in wanted and r.get("model_version", version) == version]
    ok = [r for r in records if r["status"] == "ok"]
    best: dict[str, dict] = {}
    polymorphs: dict[str, dict[str, float]] = {}
    for r in ok:
        polymorphs.setdefault(r["formula"], {})[r["prototype"]] = round(r["energy_per_atom"], 5)
        if r["formula"] not in best or r["energy_per_atom"] < best[r["formula"]]["energy_per_atom"]:
            best[r["formula"]] = r
    element_entries = chgnet.elemental_reference_entries(elements)
    entries = [element_entries[el].as_dict() for el in sorted(element_entries)]
    entries += [best[f]["entry"] for f in sorted(best)]
    compositions = sorted({j.formula for j in jobs})
    not_run = sorted({j.key for j in jobs} - set(done))
    metadata = {
        "what": "CHGNet reference set of motif_screen's demo chemical space: elemental references and competing "
        "binary phases (lowest-energy relaxed prototype per composition)",
        "energies": "CHGNet (machine-learned interatomic potential) total energies in eV, NOT DFT. CHGNet is fitted "
        "to Materials Project GGA/GGA+U energies with MP2020 corrections, so its formation energies are comparable "
        "to the Materials Project's only loosely. Use with the CHGNet stand-in oracle (source='chgnet') only.",
        "chgnet_package_version": chgnet_package.__version__,
        "chgnet_model_version": version,
        "date": _dt.date.today().isoformat(),
        "made_by": "python scripts/make_chgnet_references.py (relaxations, resumed until done), then --assemble; "
        "this file's arguments: " + " ".join(sys.argv[1:]),
        "relaxation": {
            "optimizer": "FIRE (chgnet StructOptimizer), cell relaxed",
            "fmax_eV_per_A": args.fmax,
            "max_steps": args.steps,
        },  # fmt: skip
        "start_geometry": "prototype decorated with cation and anion, scaled so the shortest cation-anion distance "
        "is the sum of Shannon crystal radii (pymatgen ionic radii)",
        "elements": "motif_screen.oracles.chgnet.elemental_reference_entries (the shipped chgnet_references.json)",
        "cations": sorted({j.cation for j in jobs}),
        "anions": sorted({j.anion for j in jobs}),
        "scope": args.scope,
        "oxidation_states": "pymatgen Element.common_oxidation_states (positive ones)",
        "prototypes": {
            p.name: {
                "source": f"pymatgen AFLOW prototype {p.aflow[0]} ({p.aflow[1]})"
                if p.aflow
                else (p.build.__doc__ or ""),
                "stoichiometry": "A{}X{}".format(*stoichiometry(p)),
                "tier": p.tier,
            }
            for p in PROTOTYPES
        },
        "counts": {
            "elements": len(element_entries),
            "compositions": len(compositions),
            "relaxations_planned": len(jobs),
            "relaxations_done": len(records),
            "relaxations_ok": len(ok),
            "relaxations_failed": sum(r["status"] == "failed" for r in records),
            "relaxations_rejected": sum(r["status"] == "rejected" for r in records),
            "relaxations_not_converged_kept": sum(not best[f]["converged"] for f in best),
            "compositions_kept": len(best),
            "compositions_without_result": sorted(set(compositions) - set(best)),
            "relaxations_not_run": len(not_run),
            "relaxation_seconds_total": round(sum(r.get("seconds", 0.0) for r in records), 1),
        },
        "skipped_no_prototype": skipped,
        "failures": {r["key"]: r["error"] for r in records if r["status"] != "ok"},
        "polymorphs_eV_per_atom": polymorphs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(summary(metadata, out.name), encoding="utf-8")
    text = json.dumps({"metadata": metadata, "entries": entries}, separators=(",", ":"))
    out.write_text(text + "\n", encoding="utf-8")
    log.info("wrote %s: %d entries (%d elements, %d binaries), %.1f kB", out, len(entries), len(element_entries),
             len(best), len(text) / 1024)  # fmt: skip
    return metadata


def summary(meta: dict, name: str) -> str:
    """The human-readable sibling of the shipped file (its metadata, as a Markdown page)."""
    counts = meta["counts"]
    kept = Counter()
    for energies in meta["polymorphs_eV_per_atom"].values():
        kept[min(energies, key=energies.get)] += 1
    lines = [
        f"# {name}",
        "",
        "The CHGNet reference set of the demo's chemical space: elemental references and competing binary",
        "phases, made by `scripts/make_chgnet_references.py` (read it for the method). "
        "**CHGNet (machine-learned potential) energies, not DFT**: for the CHGNet stand-in oracle only.",
        "",
        f"- CHGNet {meta['chgnet_package_version']}, model {meta['chgnet_model_version']}, made {meta['date']}",
        f"- command: `{meta['made_by'].strip()}`",
        "- relaxation: {optimizer}, fmax {fmax_eV_per_A} eV/Å, at most {max_steps} steps".format(**meta["relaxation"]),
        f"- start: {meta['start_geometry']}",
        f"- cations ({len(meta['cations'])}): {', '.join(meta['cations'])}; anions: {', '.join(meta['anions'])}; "
        f"oxidation states: {meta['oxidation_states']}; scope: {meta['scope']}",
        f"- {counts['elements']} elements and {counts['compositions_kept']} binaries of {counts['compositions']} "
        f"compositions; {counts['relaxations_ok']} of {counts['relaxations_planned']} planned relaxations succeeded "
        f"({counts['relaxations_failed']} failed, {counts['relaxations_rejected']} rejected, "
        f"{counts['relaxations_not_run']} not run); {counts['relaxation_seconds_total'] / 60:.0f} min of relaxation",
        f"- compositions without a result: {', '.join(counts['compositions_without_result']) or 'none'}",
        f"- binaries with no prototype here: {', '.join(s['formula'] for s in meta['skipped_no_prototype']) or 'none'}",
        "",
        "| prototype | stoichiometry | source | lowest for |",
        "| --- | --- | --- | --- |",
    ]
    for proto, info in meta["prototypes"].items():
        lines.append(f"| {proto} | {info['stoichiometry']} | {info['source']} | {kept.get(proto, 0)} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="make_chgnet_references.py",
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (head of this file) for the chemistry, prototypes and output format.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="checkpoint whose config.elements span the space")
    p.add_argument("--cations", help="comma-separated cations (default: the model's non-anion elements)")
    p.add_argument("--anions", help="comma-separated anions (default: O,N,F,S,Cl,Se that the model has)")
    p.add_argument("--scope", choices=("relevant", "all"), default="relevant", help="which oxidation states")
    p.add_argument("--tier", type=int, choices=(1, 2), default=2, help="highest prototype tier to run")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="JSON-lines work file (appended, resumable)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the reference set written by --assemble")
    p.add_argument("--fmax", type=float, default=FMAX, help="force threshold, eV/Å")
    p.add_argument("--steps", type=int, default=STEPS, help="maximum FIRE steps per relaxation")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--minutes", type=float, help="stop starting new relaxations after this many minutes")
    p.add_argument("--retry-failed", action="store_true", help="run failed jobs of the work file again")
    p.add_argument("--list", action="store_true", help="print the work list and counts, run nothing")
    p.add_argument("--assemble", action="store_true", help="write --out from the work file, run nothing")
    p.add_argument("--log", type=Path, help="also log to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.log:
        handlers.append(logging.FileHandler(args.log))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", handlers=handlers, force=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    elements = model_elements(args.model)
    anions = args.anions.split(",") if args.anions else [x for x in ANION_CHARGE if x in elements]
    cations = args.cations.split(",") if args.cations else [el for el in elements if el not in ANION_CHARGE]
    jobs, skipped = work_list(cations, anions, args.scope, args.tier)
    counts = Counter(j.prototype for j in jobs)
    log.info(
        "%d cations x %d anions (%s): %d compositions, %d relaxations; %d binaries have no prototype here",
        len(cations),
        len(anions),
        ",".join(anions),
        len({j.formula for j in jobs}),
        len(jobs),
        len(skipped),
    )
    if args.list:
        for proto, n in counts.most_common():
            print(f"{n:5d}  {proto}")
        for job in jobs:
            print(job.key, f"tier {job.tier}")
        print("no prototype:", ", ".join(s["formula"] for s in skipped))
        return 0
    if args.assemble:
        assemble(jobs, skipped, args.work, args.out, sorted(set(cations) | set(anions)), args)
        return 0
    start = time.perf_counter()
    run(jobs, args.work, args.fmax, args.steps, args.minutes, args.retry_failed)
    log.info("wall time %.1f min", (time.perf_counter() - start) / 60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
