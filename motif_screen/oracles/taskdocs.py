"""Oracle values from atomate task documents (the ``tasks`` collection VaspToDb writes).

A task document is linked to its candidate by the ``keys.TASKDOC_CANDIDATE_ID`` field that
:func:`~motif_screen.handoff.powerups.add_candidate_fields` puts there; a document without it was
not handed off by us and is refused with a clear error, never guessed.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from motif_screen import keys
from motif_screen.errors import InputError

SUCCESSFUL = "successful"
FAILED = "failed"


def _describe(doc: Mapping) -> str:
    return f"atomate task document {doc.get('task_id', '?')} ({doc.get('dir_name', 'no dir_name')})"


def candidate_id_of(doc: Mapping) -> str:
    """The candidate a task document belongs to; InputError when it has none."""
    cid = doc.get(keys.TASKDOC_CANDIDATE_ID)
    if cid is None or not str(cid).strip():
        raise InputError(
            f"{_describe(doc)} has no `{keys.TASKDOC_CANDIDATE_ID}` field, so it cannot be linked to a "
            "candidate (was the workflow built without motif_screen's hand-off powerups?)"
        )
    return str(cid)


def task_label(doc: Mapping) -> str:
    return str(doc.get("task_label") or "")


def is_nscf(doc: Mapping) -> bool:
    """Non-self-consistent runs have meaningful eigenvalues but no meaningful total energy."""
    return "nscf" in task_label(doc).lower() or doc.get("input", {}).get("incar", {}).get("ICHARG", 0) >= 10


def oracle_values_from_taskdoc(doc: Mapping, elemental_references: Mapping[str, float] | None = None) -> dict:
    """Energy, energy per atom, band gap, final structure, task id and run status of one task doc.

    ``formation_energy_per_atom`` is set only when ``elemental_references`` (element -> eV/atom from
    the *same* functional and settings) cover every element; otherwise it is None.
    """
    if not isinstance(doc, Mapping):
        raise InputError(f"an atomate task document must be a mapping, not {type(doc).__name__}")
    candidate_id = candidate_id_of(doc)
    output = doc.get("output") or {}
    state = doc.get("state")
    errors = [str(e) for e in (doc.get("analysis") or {}).get("errors", [])]
    run_status = SUCCESSFUL if state == "successful" else FAILED
    if run_status == FAILED and not errors:
        errors = [f"VASP run state is {state!r} (atomate VaspDrone)"]
    nsites = doc.get("nsites") or (len(output["structure"]["sites"]) if output.get("structure") else None)
    energy = output.get("energy")
    energy_per_atom = output.get("energy_per_atom")
    if energy_per_atom is None and energy is not None and nsites:
        energy_per_atom = energy / nsites
    values = {
        "candidate_id": candidate_id,
        "task_id": doc.get("task_id"),
        "task_label": task_label(doc),
        "run_status": run_status,
        "errors": errors,
        "energy": None if is_nscf(doc) else energy,
        "energy_per_atom": None if is_nscf(doc) else energy_per_atom,
        keys.BAND_GAP: output.get("bandgap"),
        "final_structure": output.get("structure"),
        keys.FORMATION_ENERGY: None,
    }
    if elemental_references and values["energy"] is not None and doc.get("composition_unit_cell"):
        from motif_screen.oracles.chgnet import formation_energy_per_atom

        values[keys.FORMATION_ENERGY] = formation_energy_per_atom(
            doc["composition_unit_cell"], values["energy"], elemental_references
        )
    return values


def _gap_rank(doc: Mapping) -> int:
    label = task_label(doc).lower()
    if "nscf uniform" in label:
        return 3  # the dense uniform mesh: atomate/MP's band gap of record
    if "static" in label:
        return 2
    if "nscf" in label:
        return 1  # line mode misses gaps off the path
    return 0


def oracle_values_from_taskdocs(docs: Iterable[Mapping], elemental_references: Mapping[str, float] | None = None) -> dict:
    """Combine the task documents of one candidate's workflow into one oracle result.

    Energies and the final structure come from the last self-consistent run (the static after an
    optimisation), the band gap from the best run for gaps (uniform NSCF > static > line NSCF >
    optimisation). The result is failed when any of the documents is. The keys are exactly the
    keyword arguments of :func:`motif_screen.db.records.record_oracle_result`.
    """
    docs = sorted(docs, key=lambda d: (str(d.get("completed_at", "")), str(d.get("task_id", ""))))
    if not docs:
        raise InputError("no atomate task documents to read oracle values from")
    per_doc = [oracle_values_from_taskdoc(d, elemental_references) for d in docs]
    ids = {v["candidate_id"] for v in per_doc}
    if len(ids) > 1:
        raise InputError(f"task documents of different candidates were combined: {', '.join(sorted(ids))}")
    scf = [v for d, v in zip(docs, per_doc) if not is_nscf(d)] or per_doc
    last = scf[-1]
    gap_doc = max(zip(docs, per_doc), key=lambda dv: (_gap_rank(dv[0]), str(dv[0].get("completed_at", ""))))[1]
    failed = [v for v in per_doc if v["run_status"] == FAILED]
    return {
        "run_status": FAILED if failed else SUCCESSFUL,
        "errors": [f"{v['task_label'] or v['task_id']}: {e}" for v in failed for e in v["errors"]],
        "energy": last["energy"],
        "energy_per_atom": last["energy_per_atom"],
        keys.FORMATION_ENERGY: last[keys.FORMATION_ENERGY],
        keys.BAND_GAP: gap_doc[keys.BAND_GAP],
        "final_structure": last["final_structure"],
        "task_id": last["task_id"],
    }
