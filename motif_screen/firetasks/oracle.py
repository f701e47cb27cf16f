"""Oracle-side Firetasks: guard each step of a handed-off workflow, link atomate's task documents to
their candidate, and run the local CHGNet oracle.

Thin adaptors (``@explicit_serialize``, declared params, ``FWAction``) over
:mod:`motif_screen.oracles` and the query layer. ``db_file`` is atomate's ``">>db_file<<"``
placeholder, resolved from the worker's env like ``env_chk``. The values of a VASP workflow are
recorded by the round's collector once every step has finished, each from the step that defines it.
"""

from __future__ import annotations

import os

from fireworks import FiretaskBase, FWAction, explicit_serialize

from motif_screen import keys
from motif_screen.campaign import thermo
from motif_screen.campaign.launchpad import SKIPPED_MARK
from motif_screen.errors import InputError
from motif_screen.firetasks.common import worker_repository
from motif_screen.oracles import chgnet
from motif_screen.oracles.taskdocs import candidate_id_of

OPTIONAL_DB = ["db_file"]


@explicit_serialize
class GuardOracleStep(FiretaskBase):
    """First task of every Firework of a handed-off workflow.

    * a parent step fizzled (FireWorks lists it in ``_fizzled_parents``): this step fizzles at once,
      naming it, so the failure reaches the collector instead of leaving children WAITING forever;
    * the candidate (or reference) already has its result: the remaining tasks are skipped, so
      ``lpad rerun_fws`` upstream never recomputes a finished calculation.

    Required: one of ``candidate_id`` / ``reference_key``. Optional: ``db_file``, ``source``.
    """

    optional_params = ["candidate_id", "reference_key", "source", *OPTIONAL_DB]

    def run_task(self, fw_spec):
        fizzled = [p for p in fw_spec.get("_fizzled_parents") or [] if self._still_fizzled(p)]
        if fizzled:
            names = ", ".join(f"{p.get('name', '?')} (Firework {p.get('fw_id', '?')})" for p in fizzled)
            raise RuntimeError(f"{SKIPPED_MARK} {names} fizzled")
        source = self.get("source", keys.SOURCE_VASP)
        with worker_repository(self, fw_spec) as repo:
            if self.get("candidate_id"):
                done = repo.candidate(self["candidate_id"]).status == keys.STATUS_COMPUTED
            elif self.get("reference_key"):
                ref = repo.reference(self["reference_key"])
                done = ref is not None and ref.status == "computed"
            else:
                raise InputError("GuardOracleStep needs candidate_id or reference_key")
        if done:
            return FWAction(stored_data={"skipped": f"already computed by {source}"}, exit=True)
        return FWAction()

    def _still_fizzled(self, parent: dict) -> bool:
        """FireWorks keeps ``_fizzled_parents`` in the spec after ``lpad rerun_fws``: ask the LaunchPad."""
        launchpad = getattr(self, "launchpad", None)
        if launchpad is None or parent.get("fw_id") is None:
            return True
        found = launchpad.fireworks.find_one({"fw_id": parent["fw_id"]}, {"state": 1})
        return found is None or found.get("state") == "FIZZLED"


@explicit_serialize
class LinkTaskDocument(FiretaskBase):
    """After atomate's ``VaspToDb``: check the new task document names this workflow's candidate
    (or reference) and add its task id to the candidate. Required: ``candidate_id`` or
    ``reference_key``. Optional: ``db_file``."""

    optional_params = ["candidate_id", "reference_key", *OPTIONAL_DB]

    def run_task(self, fw_spec):
        here = os.path.abspath(os.getcwd())
        with worker_repository(self, fw_spec) as repo:
            docs = repo.task_documents_in(here)
            if not docs:
                raise InputError(f"no atomate task document for {here}: did VaspToDb run before LinkTaskDocument?")
            doc = docs[-1]
            if self.get("reference_key"):
                if doc.get(keys.TASKDOC_REFERENCE) != self["reference_key"]:
                    raise InputError(
                        f"the task document in {here} does not belong to reference {self['reference_key']}"
                    )
                return FWAction(stored_data={"reference_key": self["reference_key"], "task_id": doc.get("task_id")})
            candidate_id = str(self["candidate_id"])
            if candidate_id_of(doc) != candidate_id:
                raise InputError(
                    f"the task document in {here} belongs to candidate "
                    f"{doc[keys.TASKDOC_CANDIDATE_ID]}, not {candidate_id}"
                )
            repo.add_task_ids(candidate_id, [doc.get("task_id")])
        return FWAction(stored_data={"candidate_id": candidate_id, "task_id": doc.get("task_id")})


@explicit_serialize
class RunChgnetOracle(FiretaskBase):
    """Relax a candidate with CHGNet and record an ``OracleResult`` with ``source="chgnet"``.

    Formation energy and distance to the hull come from CHGNet references and CHGNet results only.
    Required: ``candidate_id``. Optional: ``db_file``, ``fmax`` (eV/Å), ``steps``,
    ``references_file`` (JSON cache of CHGNet elemental references). A failure records
    ``run_status="failed"`` with the reason, then raises so the Firework FIZZLES with that message.
    """

    required_params = ["candidate_id"]
    optional_params = ["fmax", "steps", "references_file", *OPTIONAL_DB]

    def run_task(self, fw_spec):
        candidate_id = str(self["candidate_id"])
        fw_id = getattr(self, "fw_id", None)
        with worker_repository(self, fw_spec) as repo:
            candidate = repo.candidate(candidate_id)
            if candidate.status == keys.STATUS_COMPUTED:
                return FWAction(stored_data={"candidate_id": candidate_id, "skipped": "already computed"})
            try:
                structure = candidate.to_structure()
                result = chgnet.chgnet_relax(
                    structure,
                    fmax=float(self.get("fmax", chgnet.DEFAULT_FMAX)),
                    steps=int(self.get("steps", chgnet.DEFAULT_STEPS)),
                )
                entry = chgnet.entry_of(result)
                store_chgnet_references(
                    repo, [el.symbol for el in structure.composition.elements], self.get("references_file")
                )
                values = thermo.stability_values(repo, keys.SOURCE_CHGNET, entry)
            except Exception as exc:
                reason = (
                    f"CHGNet relaxation of candidate {candidate_id} ({candidate.formula}) failed: "
                    f"{type(exc).__name__}: {exc}"
                )
                repo.record_oracle_result(
                    candidate_id, keys.SOURCE_CHGNET, run_status="failed", fw_id=fw_id, errors=[reason]
                )
                raise RuntimeError(reason) from exc
            errors = (
                []
                if result["converged"]
                else [f"not converged: max force {result['max_force']:.3f} eV/Å after {result['steps']} steps"]
            )
            record = repo.record_oracle_result(
                candidate_id,
                keys.SOURCE_CHGNET,
                run_status="successful",
                energy=result["energy"],
                energy_per_atom=result["energy_per_atom"],
                final_structure=result["final_structure"],
                fw_id=fw_id,
                errors=errors,
                **values,
            )
        return FWAction(
            stored_data={
                "candidate_id": candidate_id,
                "oracle_result_id": str(record.id),
                "source": keys.SOURCE_CHGNET,
                "energy_per_atom": result["energy_per_atom"],
                keys.FORMATION_ENERGY: values[keys.FORMATION_ENERGY],
                keys.ENERGY_ABOVE_HULL: values[keys.ENERGY_ABOVE_HULL],
                "converged": result["converged"],
                "steps": result["steps"],
                "seconds": round(result["seconds"], 2),
                "chgnet_version": result["model_version"],
            }
        )


def store_chgnet_references(repo, elements: list[str], cache_file=None) -> None:
    """CHGNet references: the shipped set (elements and competing binaries, stored once), then the
    elemental references of ``elements`` (shipped table, cache, or relaxed)."""
    thermo.ensure_shipped_chgnet_references(repo)
    for element, entry in chgnet.elemental_reference_entries(elements, cache_file).items():
        key = thermo.reference_key("computed", keys.SOURCE_CHGNET, entry.parameters["model_version"], element)
        if repo.reference(key) is None:
            thermo.store_reference(repo, keys.SOURCE_CHGNET, entry, origin="computed", key=key)
