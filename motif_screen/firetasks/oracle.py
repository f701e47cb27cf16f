"""Oracle-side Firetasks: link atomate's task documents to candidates; run the local CHGNet oracle.

Thin adaptors (FireWorks conventions: ``@explicit_serialize``, declared params, ``FWAction``) over
:mod:`motif_screen.oracles.taskdocs`, :mod:`motif_screen.oracles.chgnet` and
:func:`motif_screen.db.records.record_oracle_result`. ``db_file`` is atomate's ``">>db_file<<"``
placeholder, resolved from the worker's env like ``env_chk``.
"""

from __future__ import annotations

import os

from fireworks import FiretaskBase, FWAction, explicit_serialize

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.firetasks.common import open_worker_db
from motif_screen.settings import DB_FILE_PLACEHOLDER


def tasks_of_candidate(tasks_collection, candidate_id) -> list[dict]:
    return list(tasks_collection.find({keys.TASKDOC_CANDIDATE_ID: str(candidate_id)}))


def task_in_dir(tasks_collection, directory: str, candidate_id) -> dict:
    """The task document VaspToDb wrote for ``directory``; a clear error when it is not ours."""
    from motif_screen.oracles.taskdocs import candidate_id_of

    directory = os.path.abspath(directory)

    def here(doc):
        return str(doc.get("dir_name", "")).split(":")[-1] == directory

    mine = [d for d in tasks_of_candidate(tasks_collection, candidate_id) if here(d)]
    if mine:
        return max(mine, key=lambda d: str(d.get("task_id")))
    foreign = [d for d in tasks_collection.find({"dir_name": {"$regex": f"{_regex_escape(directory)}$"}})]
    if foreign:
        candidate_id_of(foreign[-1])  # raises: a task document without the candidate id
        raise InputError(
            f"the task document in {directory} belongs to candidate {foreign[-1][keys.TASKDOC_CANDIDATE_ID]}, "
            f"not {candidate_id}"
        )
    raise InputError(f"no atomate task document for {directory}: did VaspToDb run before RecordOracleResult?")


def _regex_escape(text: str) -> str:
    import re

    return re.escape(text)


@explicit_serialize
class RecordOracleResult(FiretaskBase):
    """After atomate's VaspToDb: link the new task document to its candidate; on the last VASP
    step of the workflow, record the candidate's ``OracleResult`` (source ``vasp``) from all its
    task documents.

    Required: ``candidate_id``. Optional: ``db_file`` (``">>db_file<<"``), ``source`` ("vasp"),
    ``final`` (True: record; False: only check the link).
    """

    required_params = ["candidate_id"]
    optional_params = ["db_file", "source", "final"]

    def run_task(self, fw_spec):
        from motif_screen.db.records import record_oracle_result
        from motif_screen.oracles.taskdocs import oracle_values_from_taskdocs

        candidate_id = str(self["candidate_id"])
        source = self.get("source", keys.SOURCE_VASP)
        if source not in keys.ORACLE_SOURCES:
            raise InputError(f"unknown oracle source {source!r}; expected one of {', '.join(keys.ORACLE_SOURCES)}")
        conn = open_worker_db(self.get("db_file", DB_FILE_PLACEHOLDER), fw_spec)
        collection = conn.tasks_collection
        tasks = conn.db[collection]
        doc = task_in_dir(tasks, os.getcwd(), candidate_id)
        stored = {"candidate_id": candidate_id, "task_id": doc.get("task_id")}
        if not self.get("final", True):
            return FWAction(stored_data=stored)
        values = oracle_values_from_taskdocs(tasks_of_candidate(tasks, candidate_id))
        result = record_oracle_result(candidate_id, source, fw_id=getattr(self, "fw_id", None), **values)
        conn.flush()
        stored.update(oracle_result_id=str(result.id), run_status=result.run_status)
        return FWAction(stored_data=stored)


@explicit_serialize
class RunChgnetOracle(FiretaskBase):
    """Relax a candidate with CHGNet and record an ``OracleResult`` with ``source="chgnet"``.

    Required: ``candidate_id``. Optional: ``db_file`` (``">>db_file<<"``), ``fmax`` (eV/Å),
    ``steps``, ``references_file`` (JSON cache of CHGNet elemental references). A failure records
    ``run_status="failed"`` with the reason, then raises so the Firework FIZZLES with that message.
    """

    required_params = ["candidate_id"]
    optional_params = ["db_file", "fmax", "steps", "references_file"]

    def run_task(self, fw_spec):
        from motif_screen.db.records import get_candidate, record_oracle_result
        from motif_screen.oracles import chgnet as chgnet_oracle

        candidate_id = str(self["candidate_id"])
        conn = open_worker_db(self.get("db_file", DB_FILE_PLACEHOLDER), fw_spec)
        candidate = get_candidate(candidate_id)
        fw_id = getattr(self, "fw_id", None)
        try:
            structure = candidate.to_structure()
            result = chgnet_oracle.chgnet_oracle(
                structure,
                fmax=float(self.get("fmax", chgnet_oracle.DEFAULT_FMAX)),
                steps=int(self.get("steps", chgnet_oracle.DEFAULT_STEPS)),
                cache_file=self.get("references_file"),
            )
        except Exception as exc:
            reason = f"CHGNet relaxation of candidate {candidate_id} ({candidate.formula}) failed: {type(exc).__name__}: {exc}"
            record_oracle_result(candidate_id, keys.SOURCE_CHGNET, run_status="failed", fw_id=fw_id, errors=[reason])
            conn.flush()
            raise RuntimeError(reason) from exc
        errors = [] if result["converged"] else [
            f"not converged: max force {result['max_force']:.3f} eV/Å after {result['steps']} steps"
        ]
        record = record_oracle_result(
            candidate_id,
            keys.SOURCE_CHGNET,
            run_status="successful",
            energy=result["energy"],
            energy_per_atom=result["energy_per_atom"],
            formation_energy_per_atom=result[keys.FORMATION_ENERGY],
            final_structure=result["final_structure"],
            fw_id=fw_id,
            errors=errors,
        )
        conn.flush()
        return FWAction(
            stored_data={
                "candidate_id": candidate_id,
                "oracle_result_id": str(record.id),
                "source": keys.SOURCE_CHGNET,
                "energy_per_atom": result["energy_per_atom"],
                keys.FORMATION_ENERGY: result[keys.FORMATION_ENERGY],
                "converged": result["converged"],
                "steps": result["steps"],
                "seconds": round(result["seconds"], 2),
                "chgnet_version": result["model_version"],
            }
        )
