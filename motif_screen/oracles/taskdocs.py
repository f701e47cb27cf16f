"""Oracle values from atomate task documents (the ``tasks`` collection VaspToDb writes), step by step.

Each value a workflow computes is defined by one of its steps (atomate's ``task_label``): the
energies, the final structure and the entry by the static run (the last structure optimisation
when the workflow has no static), the band gap by the uniform NSCF run (the static when there is
none). A value is read from its defining step only. When that step has no task document (its
Firework fizzled before VaspToDb ran, or never ran) or its document is not successful, the result
is failed and says which step and why — another step's value never stands in.

A task document is linked to its candidate by the ``keys.TASKDOC_CANDIDATE_ID`` field that
:func:`~motif_screen.handoff.powerups.add_candidate_fields` puts there; a document without it was
not handed off by us and is refused with a clear error, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pymatgen.core import Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.oracles.references import comparable_settings

SUCCESSFUL = "successful"
FAILED = "failed"

ENERGY = "energy"
BAND_GAP = keys.BAND_GAP

# atomate's task labels for the steps of its presets
OPTIMIZATION = "structure optimization"  # also "PBEsol structure optimization", "R2SCAN structure optimization"
STATIC = "static"
NSCF_UNIFORM = "nscf uniform"

# Which step defines which value, in order of preference. A step is of a kind when its label is
# the kind or ends with it after a space (atomate prefixes the functional to some labels); when
# several steps are of the preferred kind, the last one in workflow order defines the value.
DEFINING_STEPS: dict[str, tuple[str, ...]] = {
    ENERGY: (STATIC, OPTIMIZATION),  # also energy_per_atom, final_structure, entry
    BAND_GAP: (NSCF_UNIFORM, STATIC),  # the dense uniform mesh; line-mode runs miss gaps off the path
}


def _describe(doc: Mapping) -> str:
    return f"atomate task document {doc.get('task_id', '?')} ({doc.get('dir_name', 'no dir_name')})"


def _normalise(label: str) -> str:
    return " ".join(str(label).lower().split())


def candidate_id_of(doc: Mapping) -> str:
    """The candidate a task document belongs to; InputError when it has none."""
    cid = doc.get(keys.TASKDOC_CANDIDATE_ID)
    if cid is None or not str(cid).strip():
        raise InputError(
            f"{_describe(doc)} has no `{keys.TASKDOC_CANDIDATE_ID}` field, so it cannot be linked to a "
            "candidate (was the workflow built without motif_screen's hand-off powerups?)"
        )
    return str(cid)


def step_name(doc: Mapping) -> str:
    """The workflow step a task document belongs to: atomate's ``task_label``, lower-case, stripped.

    E.g. ``"structure optimization"``, ``"static"``, ``"nscf uniform"``, ``"nscf line"``. A
    document without a task label cannot be placed in its workflow: InputError.
    """
    label = doc.get("task_label")
    if not isinstance(label, str) or not label.strip():
        raise InputError(f"{_describe(doc)} has no task_label, so the workflow step it belongs to is unknown")
    return _normalise(label)


def _is_kind(step: str, kind: str) -> bool:
    return step == kind or step.endswith(" " + kind)


def defining_steps(step_names: list[str]) -> dict[str, str | None]:
    """The step that defines each value in a workflow with these steps (given in workflow order).

    Returns ``{"energy": step, "band_gap": step}`` following :data:`DEFINING_STEPS`: energy
    from ``"static"`` when the workflow has one, otherwise from its last structure optimisation;
    band gap from ``"nscf uniform"`` when present, otherwise ``"static"``. A value no step of the
    workflow defines maps to None (e.g. the band gap of an optimisation-only workflow).
    """
    names = [_normalise(name) for name in step_names]
    defines: dict[str, str | None] = {}
    for value, kinds in DEFINING_STEPS.items():
        defines[value] = next(
            (matches[-1] for kind in kinds if (matches := [n for n in names if _is_kind(n, kind)])), None
        )
    return defines


def _check_defines(defines: Mapping) -> dict[str, str | None]:
    if not isinstance(defines, Mapping) or set(defines) != set(DEFINING_STEPS):
        got = sorted(defines) if isinstance(defines, Mapping) else type(defines).__name__
        raise InputError(
            f"defines must map exactly {sorted(DEFINING_STEPS)} to step names (see defining_steps), got {got}"
        )
    return {value: (_normalise(step) if step else None) for value, step in defines.items()}


def _finite(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{what} is {number}")
    return number


def entry_from_taskdoc(doc: Mapping) -> ComputedStructureEntry:
    """The uncorrected ``ComputedStructureEntry`` of one task document, as the Materials Project stores it.

    Structure from ``output.structure``, energy ``output.energy`` (no correction applied),
    ``entry_id`` = the task id (str). ``parameters``: ``run_type`` (from
    ``calcs_reversed[0].run_type``, pymatgen's ``Vasprun.run_type`` of the last calculation, else
    the document's ``run_type``), ``is_hubbard``, ``hubbards`` and ``potcar_spec`` from the
    document's ``input`` (as atomate's VaspDrone and the Materials Project store them), and
    ``ENCUT`` (the cutoff VASP used: ``input.parameters.ENMAX``, else the INCAR's ``ENCUT``) for
    :func:`~motif_screen.oracles.references.comparable_settings`.
    """
    if not isinstance(doc, Mapping):
        raise InputError(f"an atomate task document must be a mapping, not {type(doc).__name__}")
    output = doc.get("output") or {}
    if not output.get("structure"):
        raise InputError(f"{_describe(doc)} has no output.structure")
    energy = _finite(output.get("energy"), f"output.energy of {_describe(doc)}")
    calcs = doc.get("calcs_reversed") or [{}]
    run_type = calcs[0].get("run_type") or doc.get("run_type")
    if not run_type:
        raise InputError(f"{_describe(doc)} has no run_type (calcs_reversed.0.run_type or run_type)")
    inputs = doc.get("input") or {}
    # VASP lists the cutoff it used as ENMAX among vasprun.xml's parameters (ENCUT is the INCAR tag)
    encut = (inputs.get("parameters") or {}).get("ENMAX", (inputs.get("incar") or {}).get("ENCUT"))
    parameters = {
        "run_type": str(run_type),
        "is_hubbard": bool(inputs.get("is_hubbard", False)),
        "hubbards": dict(inputs.get("hubbards") or {}),
        "potcar_spec": [dict(spec) for spec in inputs.get("potcar_spec") or []],
        "ENCUT": None if encut is None else float(encut),
    }
    try:
        structure = Structure.from_dict(output["structure"])
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"output.structure of {_describe(doc)} is not a pymatgen structure: {exc}") from None
    task_id = doc.get("task_id")
    return ComputedStructureEntry(
        structure, energy, parameters=parameters, entry_id=None if task_id is None else str(task_id)
    )


def _completion_order(doc: Mapping) -> tuple[str, str]:
    return str(doc.get("completed_at") or ""), str(doc.get("last_updated") or "")


def _failure_reasons(doc: Mapping) -> list[str]:
    reasons = [str(e) for e in (doc.get("analysis") or {}).get("errors") or []]
    return reasons or [f"VASP run state is {doc.get('state')!r} (atomate's VaspDrone)"]


def values_from_taskdocs(docs: list[dict], defines: Mapping[str, str | None]) -> dict:
    """One oracle result from the task documents of one candidate's workflow.

    ``defines`` maps ``"energy"`` and ``"band_gap"`` to the step that defines each (see
    :func:`defining_steps`; None: no step defines it, the value stays None). When a step has
    several documents (``lpad rerun_fws`` after a failure adds one), the latest by
    ``completed_at`` stands for the step and earlier attempts are ignored.

    Returns ``run_status`` (``"successful"`` / ``"failed"``), ``errors`` (``"step: reason"``),
    ``energy``, ``energy_per_atom``, ``final_structure`` (dict), ``task_id`` (str),
    ``entry`` (``ComputedStructureEntry.as_dict()``, uncorrected), ``functional`` and
    ``input_set`` (:func:`~motif_screen.oracles.references.comparable_settings`), all read from
    the energy step; ``band_gap`` read from the band-gap step; ``task_ids`` (str) of all documents.
    Failed when a defining step has no document or an unsuccessful one, or when the latest
    document of any other step is unsuccessful (``errors`` names each step and its reason). A
    value whose defining step failed is None, never taken from another step; values of defining
    steps that succeeded are kept, so a failed result still shows what did run.
    Documents of several candidates, or without the candidate field, raise InputError.
    """
    defines = _check_defines(defines)
    docs = list(docs)
    for doc in docs:
        if not isinstance(doc, Mapping):
            raise InputError(f"an atomate task document must be a mapping, not {type(doc).__name__}")
    candidates = {candidate_id_of(doc) for doc in docs}
    if len(candidates) > 1:
        raise InputError(f"task documents of different candidates were combined: {', '.join(sorted(candidates))}")

    latest: dict[str, Mapping] = {}
    for doc in sorted(docs, key=_completion_order):
        latest[step_name(doc)] = doc
    errors = [
        f"{step}: {reason}"
        for step, doc in latest.items()
        if doc.get("state") != SUCCESSFUL
        for reason in _failure_reasons(doc)
    ]
    for value, step in defines.items():
        if step is not None and step not in latest:
            errors.append(
                f"{step}: no task document (its Firework fizzled, was lost or has not run), so {value} is unknown"
            )
    if not docs and not any(defines.values()):
        errors.append("no atomate task documents and no step defining a value")

    values: dict[str, Any] = {
        "energy": None,
        "energy_per_atom": None,
        BAND_GAP: None,
        "final_structure": None,
        "task_id": None,
        "entry": None,
        "functional": None,
        "input_set": None,
    }
    ok = {step: doc for step, doc in latest.items() if doc.get("state") == SUCCESSFUL}
    energy_step, gap_step = defines[ENERGY], defines[BAND_GAP]
    if energy_step in ok:
        energy_doc = ok[energy_step]
        try:
            entry = entry_from_taskdoc(energy_doc)
            functional, input_set = comparable_settings(entry)
        except InputError as exc:
            errors.append(f"{energy_step}: {exc}")
        else:
            values.update(
                energy=entry.uncorrected_energy,
                energy_per_atom=entry.energy_per_atom,
                final_structure=energy_doc["output"]["structure"],
                task_id=entry.entry_id,
                entry=entry.as_dict(),
                functional=functional,
                input_set=input_set,
            )
    if gap_step in ok:
        try:
            values[BAND_GAP] = _finite((ok[gap_step].get("output") or {}).get("bandgap"), "output.bandgap")
        except InputError as exc:
            errors.append(f"{gap_step}: {exc}")
    return {
        "run_status": FAILED if errors else SUCCESSFUL,
        "errors": errors,
        **values,
        "task_ids": [str(doc["task_id"]) for doc in docs if doc.get("task_id") is not None],
    }
