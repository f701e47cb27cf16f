"""Run whole atomate VASP workflows with no VASP and no POTCARs (atomate2's test kit, for atomate v1).

atomate ships the two halves of a fake VASP — ``use_potcar_spec`` (write ``POTCAR.spec`` instead of
POTCARs) and ``use_fake_vasp`` (replace the VASP run by a copy of reference outputs, after checking
the written inputs) — but not the reference directories. :func:`make_fake_vasp_refs` makes them:

* ``inputs/`` are written by *the workflow's own* input-writing Firetasks (``WriteVaspFromIOSet``,
  ``CopyVaspOutputs`` + ``WriteVaspStaticFromPrev`` …) run in a scratch folder, so they are exactly
  what atomate writes at run time, later steps reading the earlier steps' reference outputs just as
  ``from_prev_calc`` does on a worker;
* ``outputs/`` hold a synthetic ``vasprun.xml``, ``OUTCAR``, ``CONTCAR`` (and ``CHGCAR`` when the
  INCAR asks for one) that pymatgen and atomate's ``VaspDrone`` parse, with the total energy from
  ``energy_fn(structure)`` and a band gap from ``band_gap_fn(structure)``.

Nothing here is physics: the numbers are whatever the test injects. A step can be made to fail
like a real calculation (``fizzle=`` — unconverged electronic loop, or missing outputs).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from motif_screen.firetasks.oracle import GuardOracleStep

if TYPE_CHECKING:
    from pymatgen.core import Structure

INPUT_FILES = ("INCAR", "KPOINTS", "POSCAR", "POTCAR.spec")
FIZZLE_MODES = ("unconverged", "missing_outputs", "truncated")
DEFAULT_ENERGY_PER_ATOM = -5.0  # eV/atom: a plausible magnitude, nothing more
DEFAULT_BAND_GAP = 1.0  # eV

EnergyFn = Callable[[object], float]


def default_energy_fn(structure) -> float:
    """A deterministic stand-in total energy (eV): −5 eV/atom."""
    return DEFAULT_ENERGY_PER_ATOM * len(structure)


def default_band_gap_fn(structure) -> float:
    return DEFAULT_BAND_GAP


# --------------------------------------------------------------------------------------------
# which Fireworks run VASP, in which order, reading which earlier step
# --------------------------------------------------------------------------------------------


def _task_name(task) -> str:
    return str(task)


def _vasp_run_index(fw) -> int | None:
    for idx, task in enumerate(fw.tasks):
        if "RunVasp" in _task_name(task):
            return idx
    return None


def _topological_fws(wf) -> list:
    parents = {fw.fw_id: list(wf.links.parent_links.get(fw.fw_id, [])) for fw in wf.fws}
    by_id = {fw.fw_id: fw for fw in wf.fws}
    done: list[int] = []
    remaining = dict(parents)
    while remaining:
        ready = sorted(fid for fid, ps in remaining.items() if all(p in done for p in ps))
        if not ready:
            raise ValueError("the workflow has a cycle")
        for fid in ready:
            done.append(fid)
            remaining.pop(fid)
    return [by_id[fid] for fid in done]


def _ancestors(wf, fw_id) -> set[int]:
    seen: set[int] = set()
    stack = list(wf.links.parent_links.get(fw_id, []))
    while stack:
        fid = stack.pop()
        if fid not in seen:
            seen.add(fid)
            stack.extend(wf.links.parent_links.get(fid, []))
    return seen


def _calc_loc_name(fw) -> str | None:
    for task in fw.tasks:
        if "PassCalcLocs" in _task_name(task):
            return task.get("name")
    return None


def ref_dir_name(fw_name: str) -> str:
    """A folder name for a Firework name (``"SrTiO3-structure optimization"`` -> ``SrTiO3-structure_optimization``)."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", fw_name).strip("_") or "fw"


@contextlib.contextmanager
def _working_dir(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# --------------------------------------------------------------------------------------------
# the public kit
# --------------------------------------------------------------------------------------------


def make_fake_vasp_refs(
    wf,
    root: str | os.PathLike,
    energy_fn: EnergyFn | None = None,
    *,
    band_gap_fn: Callable[[object], float] | None = None,
    final_structure_fn: Callable[[Structure], Structure] | None = None,
    fizzle: Iterable[str] = (),
    fizzle_mode: str = "unconverged",
) -> dict[str, str]:
    """Write one reference directory per VASP Firework of ``wf``; returns ``{fw_name: ref_dir}``.

    ``energy_fn(structure) -> eV`` (total energy) and ``band_gap_fn(structure) -> eV`` set the
    outputs; ``final_structure_fn(structure) -> structure`` lets relaxations (steps with NSW > 0)
    move atoms and the cell (default: unchanged); static and NSCF steps keep their input structure.
    ``fizzle`` names Fireworks (substrings of their names) whose run fails: ``"unconverged"``
    writes outputs whose electronic loop hit NELM (VaspDrone marks the task unsuccessful and
    atomate's VaspToDb fizzles), ``"missing_outputs"`` writes no outputs at all, ``"truncated"``
    cuts vasprun.xml half-way (a run killed while writing).
    ``wf`` itself is not modified.
    """
    from fireworks import Workflow

    from motif_screen.handoff.powerups import _atomate_powerups

    if fizzle_mode not in FIZZLE_MODES:
        raise ValueError(f"fizzle_mode must be one of {FIZZLE_MODES}, not {fizzle_mode!r}")
    energy_fn = energy_fn or default_energy_fn
    band_gap_fn = band_gap_fn or default_band_gap_fn
    fizzle = tuple(fizzle)

    work = Workflow.from_dict(wf.to_dict())
    _atomate_powerups().use_potcar_spec(work)
    root = Path(root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)

    refs: dict[str, str] = {}
    outputs_of: dict[int, tuple[str | None, Path]] = {}  # fw_id -> (calc_loc name, outputs dir)
    order = _topological_fws(work)
    rank = {fw.fw_id: i for i, fw in enumerate(order)}
    # Children of a failing step never run, but their reference inputs are still written: from
    # the outputs the step would have had (kept in a scratch folder, not in the reference dir).
    with tempfile.TemporaryDirectory(prefix="fake_vasp_ok_") as shadow_root:
        for fw in order:
            run_idx = _vasp_run_index(fw)
            if run_idx is None:
                continue
            if fw.name in refs:
                raise ValueError(f"two Fireworks are named {fw.name!r}; use_fake_vasp matches by name")
            ref = root / ref_dir_name(fw.name)
            if ref.exists():
                shutil.rmtree(ref)
            (ref / "inputs").mkdir(parents=True)
            calc_locs = [
                {"name": outputs_of[fid][0], "path": str(outputs_of[fid][1]), "filesystem": None}
                for fid in sorted(_ancestors(work, fw.fw_id), key=rank.__getitem__)
                if fid in outputs_of
            ]
            _write_inputs(fw, run_idx, calc_locs, ref / "inputs")
            failing = any(name in fw.name for name in fizzle)
            write_run = functools.partial(
                write_outputs, energy_fn=energy_fn, band_gap_fn=band_gap_fn, final_structure_fn=final_structure_fn
            )
            (ref / "outputs").mkdir()
            if not (failing and fizzle_mode == "missing_outputs"):
                write_run(ref / "inputs", ref / "outputs", converged=not (failing and fizzle_mode == "unconverged"))
            if failing and fizzle_mode == "truncated":  # a run killed mid-write: vasprun.xml ends half-way
                vasprun = ref / "outputs" / "vasprun.xml"
                text = vasprun.read_text(encoding="utf-8")
                vasprun.write_text(text[: len(text) // 2], encoding="utf-8")
            children_read = ref / "outputs"
            if failing:
                children_read = Path(shadow_root) / ref.name
                write_run(ref / "inputs", children_read, converged=True)
            outputs_of[fw.fw_id] = (_calc_loc_name(fw), children_read)
            refs[fw.name] = str(ref)
    if not refs:
        raise ValueError("the workflow has no Firework that runs VASP")
    clashes = [(a, b) for a in refs for b in refs if a != b and a in b]
    if clashes:  # atomate's use_fake_vasp matches reference keys as substrings of Firework names
        raise ValueError(f"Firework name {clashes[0][0]!r} is part of {clashes[0][1]!r}: rename one")
    return refs


def _write_inputs(fw, run_idx: int, calc_locs: list[dict], inputs_dir: Path) -> None:
    """Run the Firework's own input-writing tasks (everything before RunVasp) in a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="fake_vasp_") as scratch_name:
        scratch = Path(scratch_name)
        spec = {k: v for k, v in fw.spec.items()}
        spec["calc_locs"] = calc_locs
        spec["_fw_env"] = {}
        with _working_dir(scratch):
            for task in fw.tasks[:run_idx]:
                if not isinstance(task, GuardOracleStep):  # ours: it reads the database, writes no input
                    task.run_task(spec)
        for name in INPUT_FILES:
            if (scratch / name).exists():
                shutil.copy(scratch / name, inputs_dir / name)
    missing = [n for n in ("INCAR", "KPOINTS", "POSCAR") if not (inputs_dir / n).exists()]
    if missing:
        raise ValueError(f"Firework {fw.name!r} wrote no {', '.join(missing)} before running VASP")


def use_fake_vasp_for_tests(
    wf,
    root: str | os.PathLike,
    energy_fn: EnergyFn | None = None,
    **ref_kwargs,
):
    """``wf`` with POTCAR.spec inputs and VASP replaced by reference outputs written under ``root``.

    Input checks stay on (INCAR parameters, k-point count, POSCAR species) except the POTCAR check,
    which needs real POTCARs. Returns the same (modified) workflow, like atomate's powerups.
    """
    refs = make_fake_vasp_refs(wf, root, energy_fn, **ref_kwargs)
    from motif_screen.handoff.powerups import _atomate_powerups

    powerups = _atomate_powerups()
    wf = powerups.use_potcar_spec(wf)
    return powerups.use_fake_vasp(wf, refs, check_potcar=False)


# --------------------------------------------------------------------------------------------
# synthetic VASP outputs
# --------------------------------------------------------------------------------------------


def write_outputs(
    inputs_dir: str | os.PathLike,
    outputs_dir: str | os.PathLike,
    *,
    energy_fn: EnergyFn | None = None,
    band_gap_fn: Callable[[object], float] | None = None,
    final_structure_fn: Callable[[Structure], Structure] | None = None,
    converged: bool = True,
) -> None:
    """Write the files a finished VASP run leaves (vasprun.xml, OUTCAR, CONTCAR, inputs) for ``inputs_dir``."""
    from pymatgen.io.vasp.inputs import Incar, Kpoints, Poscar

    inputs_dir, outputs_dir = Path(inputs_dir), Path(outputs_dir)
    outputs_dir.mkdir(parents=True, exist_ok=True)
    incar = Incar.from_file(inputs_dir / "INCAR")
    kpoints = Kpoints.from_file(inputs_dir / "KPOINTS")
    initial = Poscar.from_file(inputs_dir / "POSCAR").structure
    moves_ions = int(incar.get("NSW", 0)) > 0 and int(incar.get("IBRION", -1)) >= 0
    final = final_structure_fn(initial) if (final_structure_fn and moves_ions) else initial.copy()
    energy = float((energy_fn or default_energy_fn)(final))
    gap = max(0.0, float((band_gap_fn or default_band_gap_fn)(final)))
    potcar_titles = _potcar_titles(inputs_dir, initial)

    calc = SyntheticRun(incar, kpoints, initial, final, energy, gap, potcar_titles, converged)
    (outputs_dir / "vasprun.xml").write_text(calc.vasprun_xml(), encoding="utf-8")
    (outputs_dir / "OUTCAR").write_text(calc.outcar(), encoding="utf-8")
    Poscar(final).write_file(outputs_dir / "CONTCAR")
    for name in INPUT_FILES:
        if (inputs_dir / name).exists():
            shutil.copy(inputs_dir / name, outputs_dir / name)
    if incar.get("LCHARG", True) and incar.get("ICHARG", 0) < 10:
        from pymatgen.io.vasp.outputs import Chgcar

        grid = np.full((4, 4, 4), float(incar.get("NELECT", 8.0)))
        Chgcar(Poscar(final), {"total": grid}).write_file(str(outputs_dir / "CHGCAR"))


def _potcar_titles(inputs_dir: Path, structure) -> list[str]:
    """POTCAR titles per species, from POTCAR.spec (symbols such as ``Ti_pv``) when present."""
    spec = inputs_dir / "POTCAR.spec"
    if spec.exists():
        symbols = [line.strip() for line in spec.read_text().splitlines() if line.strip()]
    else:
        symbols = [sp.symbol for sp in _species_in_order(structure)]
    return [f"PAW_PBE {sym} 01Jan2000" for sym in symbols]


def _species_in_order(structure):
    seen = []
    for site in structure:
        if site.specie not in seen:
            seen.append(site.specie)
    return seen


_DEFAULT_PARAMETERS = {
    # what VaspDrone / Vasprun.run_type read; VASP always prints these
    "GGA": "--",
    "METAGGA": "--",
    "LHFCALC": False,
    "HFSCREEN": 0.0,
    "AEXX": 0.0,
    "LUSE_VDW": False,
    "ISPIN": 1,
    "NELM": 60,
    "NSW": 0,
    "IBRION": -1,
    "ISIF": 2,
    "ISMEAR": 1,
    "SIGMA": 0.2,
    "LORBIT": 0,
    "LEPSILON": False,
    "LOPTICS": False,
    "LDAU": False,
    "ICHARG": 2,
    "EDIFF": 1e-4,
    "EDIFFG": 1e-3,
    "ENCUT": 520.0,
    "NKRED": 1,
}


class SyntheticRun:
    """One fake VASP run: the text of its vasprun.xml and OUTCAR."""

    def __init__(self, incar, kpoints, initial, final, energy, gap, potcar_titles, converged=True):
        self.incar = dict(incar)
        self.kpoints = kpoints
        self.initial = initial
        self.final = final
        self.energy = energy
        self.gap = gap
        self.potcar_titles = potcar_titles
        self.converged = converged
        self.nions = len(final)
        self.params = {**_DEFAULT_PARAMETERS, **{k: v for k, v in self.incar.items() if not isinstance(v, list)}}
        for k, v in self.incar.items():
            if isinstance(v, list):
                self.params[k] = v
        self.ispin = int(self.params.get("ISPIN", 1))
        self.nelm = int(self.params.get("NELM", 60))
        self.nocc = max(1, 2 * self.nions)  # occupied bands (a nominal count)
        self.nbands = int(self.incar.get("NBANDS", self.nocc + max(4, self.nions)))
        self.nocc = min(self.nocc, self.nbands - 1)
        self.params["NBANDS"] = self.nbands
        self.kpts, self.weights = self._kpoint_list()
        self.metal = gap <= 0.0
        self.vbm = 0.0
        self.cbm = self.vbm + gap
        # E_F just above the VBM for insulators (as VASP prints it), inside the crossing band for metals
        self.efermi = self.vbm + min(0.05, gap / 2) if not self.metal else self.vbm + 0.5
        if self.metal and len(self.kpts) < 2:  # a metal needs a band that crosses E_F: two k-points
            self.kpts, self.weights = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]], [0.5, 0.5]

    # -- k points: explicit lists are kept (NSCF uniform and line runs); meshes collapse to Γ -----
    def _kpoint_list(self):
        kp = self.kpoints
        style = str(kp.style).split(".")[-1].lower()
        if style == "line_mode" and len(kp.kpts) >= 2:
            n = max(2, int(kp.num_kpts))
            pts = [
                list(np.asarray(a, float) + t * (np.asarray(b, float) - np.asarray(a, float)))
                for a, b in zip(kp.kpts[::2], kp.kpts[1::2])
                for t in np.linspace(0.0, 1.0, n)
            ]
            return pts, [1.0] * len(pts)
        if style == "reciprocal" and kp.kpts:
            weights = list(kp.kpts_weights) if kp.kpts_weights else [1.0] * len(kp.kpts)
            return [[float(x) for x in k] for k in kp.kpts], [float(w) for w in weights]
        return [[0.0, 0.0, 0.0]], [1.0]

    # -- vasprun.xml ---------------------------------------------------------------------------
    @staticmethod
    def _i(name, value) -> str:
        if isinstance(value, bool):
            return f'  <i type="logical" name="{name}"> {"T" if value else "F"}  </i>'
        if isinstance(value, int):
            return f'  <i type="int" name="{name}"> {value}</i>'
        if isinstance(value, float):
            return f'  <i name="{name}"> {value:.8f}</i>'
        if isinstance(value, list):
            if value and all(isinstance(x, bool) for x in value):
                return f'  <v type="logical" name="{name}"> {" ".join("T" if x else "F" for x in value)}</v>'
            if value and all(isinstance(x, int) and not isinstance(x, bool) for x in value):
                return f'  <v type="int" name="{name}"> {" ".join(str(x) for x in value)}</v>'
            try:
                return f'  <v name="{name}"> {" ".join(f"{float(x):.8f}" for x in value)}</v>'
            except (TypeError, ValueError):
                return ""
        return f'  <i type="string" name="{name}">{value}</i>'

    @staticmethod
    def _vectors(name, rows) -> str:
        body = "\n".join("   <v> " + " ".join(f"{x:16.8f}" for x in row) + " </v>" for row in rows)
        return f'  <varray name="{name}">\n{body}\n  </varray>'

    def _structure(self, structure, name=None) -> str:
        attr = f' name="{name}"' if name else ""
        lattice = structure.lattice
        return "\n".join(
            [
                f" <structure{attr}>",
                "  <crystal>",
                self._vectors("basis", lattice.matrix),
                f'   <i name="volume"> {lattice.volume:.8f} </i>',
                self._vectors("rec_basis", lattice.reciprocal_lattice_crystallographic.matrix),
                "  </crystal>",
                self._vectors("positions", structure.frac_coords),
                " </structure>",
            ]
        )

    def _atominfo(self) -> str:
        species = _species_in_order(self.final)
        type_of = {sp: i + 1 for i, sp in enumerate(species)}
        atoms = "\n".join(f"    <rc><c>{s.specie.symbol:2s}</c><c>{type_of[s.specie]:3d}</c></rc>" for s in self.final)
        counts = {sp: sum(1 for s in self.final if s.specie == sp) for sp in species}
        titles = (
            self.potcar_titles
            if len(self.potcar_titles) == len(species)
            else [f"PAW_PBE {sp.symbol} 01Jan2000" for sp in species]
        )
        types = "\n".join(
            f"    <rc><c>{counts[sp]:4d}</c><c>{sp.symbol:2s}</c><c>{float(sp.atomic_mass):10.4f}</c>"
            f"<c>{4.0:10.4f}</c><c>  {title}</c></rc>"
            for sp, title in zip(species, titles)
        )
        return f""" <atominfo>
  <atoms>{self.nions}</atoms>
  <types>{len(species)}</types>
  <array name="atoms">
   <dimension dim="1">ion</dimension>
   <field type="string">element</field>
   <field type="int">atomtype</field>
   <set>
{atoms}
   </set>
  </array>
  <array name="atomtypes">
   <dimension dim="1">type</dimension>
   <field type="int">atomspertype</field>
   <field type="string">element</field>
   <field>mass</field>
   <field>valence</field>
   <field type="string">pseudopotential</field>
   <set>
{types}
   </set>
  </array>
 </atominfo>"""

    def _energies(self, energy) -> str:
        return "\n".join(
            [
                "   <energy>",
                f'    <i name="e_fr_energy"> {energy:16.8f} </i>',
                f'    <i name="e_wo_entrp"> {energy:16.8f} </i>',
                f'    <i name="e_0_energy"> {energy:16.8f} </i>',
                "   </energy>",
            ]
        )

    def _band_energies(self):
        """(nbands,) eigenvalues: occupied bands end at the VBM (0 eV), empty ones start at the CBM."""
        occ = self.vbm - 0.5 * np.arange(self.nocc)[::-1]
        first_empty = self.cbm if not self.metal else self.efermi + 0.5
        empty = first_empty + 0.5 * np.arange(self.nbands - self.nocc)
        return np.concatenate([occ, empty])

    def _eigenvalues(self) -> str:
        bands = self._band_energies()
        full = 1.0 if self.ispin == 2 else 2.0
        spins = []
        for spin in range(1, self.ispin + 1):
            kblocks = []
            for ik in range(len(self.kpts)):
                energies, occs = bands.copy(), np.where(np.arange(self.nbands) < self.nocc, full, 0.0)
                if self.metal and ik % 2 == 1:  # the top band rises above E_F away from Γ
                    energies[self.nocc - 1] += 1.0
                    occs[self.nocc - 1] = 0.0
                rows = "\n".join(f"       <r> {e:10.4f} {o:8.4f} </r>" for e, o in zip(energies, occs))
                kblocks.append(f'      <set comment="kpoint {ik + 1}">\n{rows}\n      </set>')
            spins.append(f'     <set comment="spin {spin}">\n' + "\n".join(kblocks) + "\n     </set>")
        return (
            "  <eigenvalues>\n   <array>\n"
            '    <dimension dim="1">band</dimension>\n    <dimension dim="2">kpoint</dimension>\n'
            '    <dimension dim="3">spin</dimension>\n    <field>eigene</field>\n    <field>occ</field>\n'
            "    <set>\n" + "\n".join(spins) + "\n    </set>\n   </array>\n  </eigenvalues>"
        )

    def _dos(self) -> str:
        grid = np.linspace(self.vbm - 10.0, self.cbm + 10.0, 51)
        dos = np.where((grid <= self.vbm) | (grid >= self.cbm), 1.0, 0.0)
        integrated = np.cumsum(dos) * (grid[1] - grid[0])
        spins = []
        for spin in range(1, self.ispin + 1):
            rows = "\n".join(f"       <r> {e:10.4f} {d:10.4f} {n:10.4f} </r>" for e, d, n in zip(grid, dos, integrated))
            spins.append(f'     <set comment="spin {spin}">\n{rows}\n     </set>')
        return (
            f'  <dos>\n   <i name="efermi"> {self.efermi:10.8f} </i>\n   <total>\n    <array>\n'
            '     <dimension dim="1">gridpoints</dimension>\n     <dimension dim="2">spin</dimension>\n'
            "     <field>energy</field>\n     <field>total</field>\n     <field>integrated</field>\n"
            "     <set>\n" + "\n".join(spins) + "\n     </set>\n    </array>\n   </total>\n  </dos>"
        )

    def _kpoints_block(self) -> str:
        kp = self.kpoints
        generation = ""
        style = str(kp.style).split(".")[-1].lower()
        if style in ("gamma", "monkhorst"):
            param = "Gamma" if style == "gamma" else "Monkhorst-Pack"
            div = " ".join(str(int(x)) for x in kp.kpts[0])
            generation = (
                f'  <generation param="{param}">\n   <v type="int" name="divisions"> {div} </v>\n'
                '   <v name="usershift"> 0 0 0 </v>\n  </generation>\n'
            )
        return (
            " <kpoints>\n"
            + generation
            + self._vectors("kpointlist", self.kpts).replace("  <varray", "  <varray", 1)
            + "\n"
            + self._vectors("weights", [[w] for w in self.weights])
            + "\n </kpoints>"
        )

    def vasprun_xml(self) -> str:
        nsteps = self.nelm if not self.converged else 6
        scsteps = "\n".join(
            "  <scstep>\n" + self._energies(self.energy + 10.0 ** (-i)) + "\n  </scstep>" for i in range(1, nsteps + 1)
        )
        incar = "\n".join(x for x in (self._i(k, v) for k, v in self.incar.items()) if x)
        params = "\n".join(x for x in (self._i(k, v) for k, v in self.params.items()) if x)
        zeros = np.zeros((self.nions, 3))
        return f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<modeling>
 <generator>
  <i name="program" type="string">vasp </i>
  <i name="version" type="string">6.3.2 </i>
  <i name="subversion" type="string">(build Jan 01 2024) fake-vasp (motif_screen.testing) </i>
  <i name="platform" type="string">LinuxGNU </i>
  <i name="date" type="string">2024 01 01 </i>
  <i name="time" type="string">00:00:00 </i>
 </generator>
 <incar>
{incar}
 </incar>
{self._kpoints_block()}
 <parameters>
{params}
 </parameters>
{self._atominfo()}
{self._structure(self.initial, "initialpos")}
 <calculation>
{scsteps}
{self._structure(self.final)}
{self._vectors("forces", zeros)}
{self._vectors("stress", np.zeros((3, 3)))}
{self._energies(self.energy)}
  <time name="totalsc">    1.00    1.00</time>
{self._eigenvalues()}
{self._dos()}
 </calculation>
{self._structure(self.final, "finalpos")}
</modeling>
"""

    # -- OUTCAR ----------------------------------------------------------------------------------
    def outcar(self) -> str:
        mags = "\n".join(f"{i + 1:5d}        0.000       0.000       0.000       0.000" for i in range(self.nions))
        charges = "\n".join(f"{i + 1:5d}        1.000       1.000       0.000       2.000" for i in range(self.nions))
        nplwv = 1000 * self.nions
        kpoints = (
            f"   k-points           NKPTS = {len(self.kpts):6d}   k-points in BZ     NKDIM = {len(self.kpts):6d}"
            f"   number of bands    NBANDS= {self.nbands:6d}"
        )
        return f""" vasp.6.3.2 (build Jan 01 2024) complex  (fake-vasp, motif_screen.testing)
 running on    1 total cores
 POSCAR = {self.final.composition.reduced_formula}
{kpoints}
   number of dos      NEDOS =    301   number of ions     NIONS = {self.nions:6d}
   total plane-waves  NPLWV = {nplwv:6d}
   NELM   = {self.nelm:6d};   NELMIN=  2; NELMDL= -5     # of ELM steps
   IBRION = {int(self.params.get("IBRION", -1)):6d}    ionic relax: 0-MD 1-quasi-New 2-CG
   ISPIN  = {self.ispin:6d}    spin polarized calculation?
   NELECT = {float(2 * self.nocc):12.4f}    total number of electrons

 E-fermi : {self.efermi:10.4f}     XC(G=0):  -1.0000     alpha+bet : -1.0000

 total drift:                                0.000000      0.000000      0.000000

  FREE ENERGIE OE-ION-ELECTRON-SYSTEM (eV)
  ---------------------------------------------------
  free  energy   TOTEN  = {self.energy:18.8f} eV

  energy  without entropy= {self.energy:18.8f}  energy(sigma->0) = {self.energy:18.8f}

 magnetization (x)

# of ion       s       p       d       tot
------------------------------------------
{mags}
--------------------------------------------------
tot         0.000   0.000   0.000   0.000


 total charge

# of ion       s       p       d       tot
------------------------------------------
{charges}
--------------------------------------------------
tot         {float(self.nions):.3f}   {float(self.nions):.3f}   0.000   {2.0 * self.nions:.3f}


 General timing and accounting informations for this job:
 ========================================================

                  Total CPU time used (sec):        1.000
                            User time (sec):        1.000
                          System time (sec):        0.000
                         Elapsed time (sec):        1.000

                   Maximum memory used (kb):      100000.
                   Average memory used (kb):          N/A

                          Minor page faults:         1000
                          Major page faults:            0
                 Voluntary context switches:          100
"""
