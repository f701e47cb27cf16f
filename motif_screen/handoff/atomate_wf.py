"""Build the atomate DFT workflow that checks one candidate, chosen by the screening target.

* formation energy, energy above hull, energy per atom -> structure optimisation, then a static run that reads the
  optimised structure (atomate's ``OptimizeFW`` -> ``StaticFW(parents=...)``, i.e. the first two
  steps of atomate's ``bandstructure.yaml``, built by atomate's ``get_wf_from_spec_dict``);
* band gap -> atomate's ``wf_bandstructure`` preset (optimise, static, uniform and line NSCF);
* or any workflow in atomate's library (``preset="optimize_only.yaml"``) or a YAML file of the
  same format (``preset="/path/my_wf.yaml"``).

Then atomate's common powerups (namefile, ``>>scratch_dir<<``, ``>>gamma_vasp_cmd<<``) and
metadata as its presets apply them, our tags / task-document fields / priority / queue options,
and :func:`~motif_screen.handoff.powerups.track_candidate`. ``>>vasp_cmd<<`` and ``>>db_file<<`` are
left as placeholders for atomate's ``env_chk`` on each worker; custodian runs with the handlers
atomate's ``RunVaspCustodian`` chooses (``handler_group="default"``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.handoff import powerups
from motif_screen.oracles.taskdocs import defining_steps
from motif_screen.settings import DB_FILE_PLACEHOLDER, VASP_CMD_PLACEHOLDER

PRESET_OPTIMIZE_STATIC = "optimize_static"
PRESET_BANDSTRUCTURE = "bandstructure"

# screening target -> preset
TARGET_PRESETS = {
    keys.FORMATION_ENERGY: PRESET_OPTIMIZE_STATIC,
    keys.ENERGY_ABOVE_HULL: PRESET_OPTIMIZE_STATIC,
    keys.ENERGY_PER_ATOM: PRESET_OPTIMIZE_STATIC,
    "energy": PRESET_OPTIMIZE_STATIC,
    keys.BAND_GAP: PRESET_BANDSTRUCTURE,
}

OPTIMIZE_STATIC_SPEC = {
    "name": "optimize+static",
    "fireworks": [
        {"fw": "atomate.vasp.fireworks.core.OptimizeFW"},
        {"fw": "atomate.vasp.fireworks.core.StaticFW", "params": {"parents": 0}},
    ],
}


def atomate_library_presets() -> list[str]:
    """Workflow YAML files shipped in atomate's library (usable as ``preset=``)."""
    import importlib.util

    spec = importlib.util.find_spec("atomate")
    if spec is None or not spec.submodule_search_locations:
        return []
    library = Path(list(spec.submodule_search_locations)[0]) / "vasp" / "workflows" / "base" / "library"
    return sorted(p.name for p in library.glob("*.yaml"))


def preset_for_target(target: str) -> str:
    """The preset a screening target needs; unknown targets are an InputError."""
    if target not in TARGET_PRESETS:
        raise InputError(
            f"unknown screening target {target!r} for the DFT hand-off; expected one of {', '.join(TARGET_PRESETS)}"
        )
    return TARGET_PRESETS[target]


def _check_structure(structure):
    from pymatgen.core import Structure

    if not isinstance(structure, Structure):
        raise InputError(f"the DFT hand-off needs a periodic pymatgen Structure, got {type(structure).__name__}")
    if not structure.is_ordered:
        raise InputError(f"structure {structure.composition.reduced_formula} is disordered; VASP needs an ordered cell")
    if len(structure) == 0:
        raise InputError("the structure has no sites")


def _config(vasp_cmd: str, db_file: str) -> dict:
    return {"VASP_CMD": vasp_cmd, "DB_FILE": db_file}


def _optimize_static(structure, vasp_cmd, db_file):
    from atomate.utils.utils import get_wf_from_spec_dict
    from atomate.vasp.powerups import add_common_powerups, add_wf_metadata

    spec = {**OPTIMIZE_STATIC_SPEC, "common_params": {"vasp_cmd": vasp_cmd, "db_file": db_file}}
    wf = get_wf_from_spec_dict(structure, spec)
    wf = add_common_powerups(wf, _config(vasp_cmd, db_file))
    return add_wf_metadata(wf, structure)


def _bandstructure(structure, vasp_cmd, db_file):
    from atomate.vasp.workflows.presets.core import wf_bandstructure

    return wf_bandstructure(structure, c=_config(vasp_cmd, db_file))


def _from_yaml(structure, preset: str, vasp_cmd, db_file):
    from atomate.utils.utils import get_wf_from_spec_dict
    from atomate.vasp.powerups import add_common_powerups, add_wf_metadata
    from monty.serialization import loadfn

    path = Path(preset).expanduser()
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        library = atomate_library_presets()
        if preset not in library:
            raise InputError(
                f"unknown atomate preset {preset!r}: name a YAML file or one of "
                f"{PRESET_OPTIMIZE_STATIC}, {PRESET_BANDSTRUCTURE}, {', '.join(library)}"
            )
        path = Path(library_dir()) / preset
    try:
        spec = loadfn(str(path))
    except Exception as exc:  # ruamel / monty raise many types for a bad file
        raise InputError(f"atomate preset {path} cannot be read: {exc}") from None
    if not isinstance(spec, dict) or not spec.get("fireworks"):
        raise InputError(f"atomate preset {path} has no `fireworks:` list")
    spec.setdefault("common_params", {})
    spec["common_params"].setdefault("vasp_cmd", vasp_cmd)
    spec["common_params"].setdefault("db_file", db_file)
    try:
        wf = get_wf_from_spec_dict(structure, spec)
    except Exception as exc:
        raise InputError(f"atomate preset {path} does not build a workflow: {type(exc).__name__}: {exc}") from None
    wf = add_common_powerups(wf, _config(vasp_cmd, db_file))
    return add_wf_metadata(wf, structure)


def library_dir() -> str:
    import atomate.vasp.workflows.base as base

    return os.path.join(os.path.dirname(base.__file__), "library")


def atomate_workflow(structure, preset: str, vasp_cmd: str = VASP_CMD_PLACEHOLDER, db_file: str = DB_FILE_PLACEHOLDER):
    """atomate's own workflow for ``preset`` (our presets, a library file or a YAML path), unmodified."""
    if preset == PRESET_OPTIMIZE_STATIC:
        return _optimize_static(structure, vasp_cmd, db_file)
    if preset == PRESET_BANDSTRUCTURE:
        return _bandstructure(structure, vasp_cmd, db_file)
    return _from_yaml(structure, preset, vasp_cmd, db_file)


def vasp_steps(wf) -> list[str]:
    """The names of the workflow's steps that store a task document, parents before children."""
    order = {fw_id: k for k, fw_id in enumerate(_topological(wf))}
    with_db = [fw for fw in wf.fws if any(powerups.VASP_TO_DB in str(t) for t in fw.tasks)]
    return [
        fw.name.split("-", 1)[-1].strip().lower() if fw.name.count("-") else fw.name.strip().lower()
        for fw in sorted(with_db, key=lambda fw: order[fw.fw_id])
    ]


def _topological(wf) -> list[int]:
    parents = wf.links.parent_links
    done: list[int] = []
    remaining = {fw.fw_id for fw in wf.fws}
    while remaining:
        ready = sorted(f for f in remaining if all(p in done for p in parents.get(f, [])))
        done.extend(ready)
        remaining -= set(ready)
    return done


def handoff_record(wf, preset: str) -> dict:
    """What the candidate stores about its workflow: the preset, its steps, which step defines what."""
    steps = vasp_steps(wf)
    return {"preset": preset, "steps": steps, "defines": defining_steps(steps)}


def build_oracle_workflow(
    structure,
    target: str,
    *,
    candidate_id,
    campaign: str,
    model_version=None,
    priority=None,
    db_file: str = DB_FILE_PLACEHOLDER,
    vasp_cmd: str = VASP_CMD_PLACEHOLDER,
    queue_options: Mapping | None = None,
    preset: str | None = None,
):
    """The atomate workflow that computes ``target`` for one candidate, linked to it in MongoDB.

    ``priority``: an int is used as is, a float (an acquisition score) is scaled to an int.
    ``preset`` overrides the target's choice: ``"optimize_static"``, ``"bandstructure"``, an
    atomate library file name or a path to a YAML workflow spec. Unknown targets or presets raise
    :class:`~motif_screen.errors.InputError` before atomate is imported. ``wf.metadata`` keeps the
    steps and which one defines each value (:func:`handoff_record`).
    """
    _check_structure(structure)
    if candidate_id is None or not str(candidate_id).strip():
        raise InputError("build_oracle_workflow needs the candidate id its results will be linked to")
    if not campaign:
        raise InputError("build_oracle_workflow needs the campaign name")
    chosen = preset or preset_for_target(target)
    if preset is not None:
        preset_for_target(target)  # the target is still checked: it names what gets recorded
    wf = atomate_workflow(structure, chosen, vasp_cmd, db_file)

    wf.name = f"{structure.composition.reduced_formula}-{Path(chosen).stem}-{campaign}-{candidate_id}"
    wf.metadata[keys.TASKDOC_CANDIDATE_ID] = str(candidate_id)
    wf.metadata[keys.TASKDOC_CAMPAIGN] = campaign
    wf.metadata["motif_screen_target"] = target
    wf.metadata["motif_screen_handoff"] = handoff_record(wf, chosen)
    if model_version is not None:
        wf.metadata[keys.TASKDOC_MODEL_VERSION] = model_version

    wf = powerups.tag_candidate(wf, campaign=campaign, candidate_id=candidate_id)
    wf = powerups.add_candidate_fields(wf, candidate_id=candidate_id, campaign=campaign, model_version=model_version)
    if priority is not None:
        wf = powerups.set_priority(wf, priority)
    wf = powerups.set_queue(wf, queue_options)
    wf = powerups.track_candidate(wf, candidate_id, db_file=db_file)
    return powerups.guard_steps(wf, candidate_id, db_file=db_file)


def reference_preset(preset: str) -> str:
    """The preset that computes an elemental reference comparable with ``preset``'s energies.

    The band-structure preset's energies come from its optimisation and static steps, which are
    exactly the optimize+static preset; any other preset computes its references itself.
    """
    return PRESET_OPTIMIZE_STATIC if preset == PRESET_BANDSTRUCTURE else preset


def build_reference_workflow(
    element: str,
    structure,
    *,
    reference_key: str,
    preset: str,
    db_file: str = DB_FILE_PLACEHOLDER,
    vasp_cmd: str = VASP_CMD_PLACEHOLDER,
    queue_options: Mapping | None = None,
):
    """An atomate workflow for one element's ground state, with the same input sets as ``preset``."""
    _check_structure(structure)
    wf = atomate_workflow(structure, reference_preset(preset), vasp_cmd, db_file)
    wf.name = f"{element}-reference-{Path(preset).stem}"
    wf.metadata[keys.TASKDOC_REFERENCE] = reference_key
    wf = powerups.add_reference_fields(wf, reference_key=reference_key)
    wf = powerups.set_queue(wf, queue_options)
    wf = powerups.track_candidate(wf, db_file=db_file, reference_key=reference_key)
    return powerups.guard_steps(wf, db_file=db_file, reference_key=reference_key)
