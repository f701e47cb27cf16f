"""Powerups for handed-off atomate workflows: pure ``wf -> wf`` functions, like atomate's own.

Most are atomate's powerups with our keys filled in (tags, task-document fields, priority, queue
options). :func:`track_candidate` is ours: it appends :class:`~motif_screen.firetasks.oracle.RecordOracleResult`
after every ``VaspToDb``, so a task document is linked to its candidate the moment it exists, and
every handed-off Firework names a ``motif_screen`` Firetask — a worker that deserialises it imports
``motif_screen``, which binds the shared embedded-store client into FireWorks and atomate.

atomate is imported lazily (7–9 s); importing this module is cheap.
"""

from __future__ import annotations

import math
from typing import Mapping

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.settings import DB_FILE_PLACEHOLDER

TAG_PACKAGE = "motif_screen"
VASP_TO_DB = "VaspToDb"
# Keys atomate's set_queue_options understands; anything else goes into _queueadapter as given.
ATOMATE_QUEUE_KEYS = ("walltime", "time_min", "qos")
PRIORITY_SCALE = 1000  # FireWorks priorities are integers: keep three decimals of the score


def _atomate_powerups():
    """atomate.vasp.powerups (imported on first use: it pulls in all of atomate.vasp)."""
    from atomate.vasp import powerups

    return powerups


def _common_powerups():
    from atomate.common import powerups

    return powerups


def candidate_tags(campaign: str, candidate_id) -> list[str]:
    """The tags every Firework of a candidate carries (``lpad get_fws -q '{"spec.tags": ...}'``)."""
    return [TAG_PACKAGE, f"campaign={campaign}", f"candidate={candidate_id}"]


def tag_candidate(wf, *, campaign: str, candidate_id):
    """atomate's ``add_tags``: Firework specs, workflow metadata and task documents get our tags."""
    return _common_powerups().add_tags(wf, candidate_tags(campaign, candidate_id))


def add_candidate_fields(wf, *, candidate_id, campaign: str, model_version=None):
    """atomate's ``add_additional_fields_to_taskdocs``: each task document names its candidate."""
    fields = {keys.TASKDOC_CANDIDATE_ID: str(candidate_id), keys.TASKDOC_CAMPAIGN: campaign}
    if model_version is not None:
        fields[keys.TASKDOC_MODEL_VERSION] = model_version
    return _common_powerups().add_additional_fields_to_taskdocs(wf, fields, task_name_constraint=VASP_TO_DB)


def priority_from_acquisition(score: float, scale: int = PRIORITY_SCALE) -> int:
    """FireWorks runs higher ``_priority`` first; it must be an integer, so scale the score."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise InputError(f"priority/acquisition score {score!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"priority/acquisition score {score!r} is not finite")
    return int(round(value * scale))


def set_priority(wf, priority):
    """atomate's ``add_priority`` (same priority for root and children). Floats are acquisition scores."""
    if isinstance(priority, bool):
        raise InputError("priority must be a number, not a boolean")
    value = priority if isinstance(priority, int) else priority_from_acquisition(priority)
    return _common_powerups().add_priority(wf, value)


def set_queue(wf, queue_options: Mapping | None):
    """Per-Firework queue settings (``_queueadapter``): atomate's keys via ``set_queue_options``,
    any other qadapter key (``nodes``, ``account``, ``ntasks`` ...) merged as given."""
    if not queue_options:
        return wf
    if not isinstance(queue_options, Mapping):
        raise InputError(f"queue_options must be a mapping of qadapter keys, not {type(queue_options).__name__}")
    known = {k: v for k, v in queue_options.items() if k in ATOMATE_QUEUE_KEYS}
    if known:
        wf = _atomate_powerups().set_queue_options(wf, **known)
    extra = {k: v for k, v in queue_options.items() if k not in ATOMATE_QUEUE_KEYS}
    for fw in wf.fws:
        fw.spec.setdefault("_queueadapter", {}).update(extra)
    return wf


def _vasp_to_db_fw_ids(wf) -> set[int]:
    return {fw.fw_id for fw in wf.fws if any(VASP_TO_DB in str(t) for t in fw.tasks)}


def _descendants(wf, fw_id: int) -> set[int]:
    seen: set[int] = set()
    stack = list(wf.links.get(fw_id, []))
    while stack:
        child = stack.pop()
        if child not in seen:
            seen.add(child)
            stack.extend(wf.links.get(child, []))
    return seen


def track_candidate(wf, candidate_id, db_file: str = DB_FILE_PLACEHOLDER):
    """Append ``RecordOracleResult`` after every ``VaspToDb``; idempotent.

    Fireworks whose descendants still run VASP get ``final=False`` (they only check the link), the
    last ones record the ``OracleResult``: marking a candidate computed after its relaxation would
    leave no way to mark it failed when the static run then fizzles.
    """
    from motif_screen.firetasks.oracle import RecordOracleResult

    with_db = _vasp_to_db_fw_ids(wf)
    if not with_db:
        raise InputError("the workflow has no VaspToDb step, so its results could never be linked to a candidate")
    for fw in wf.fws:
        fw.spec[keys.TASKDOC_CANDIDATE_ID] = str(candidate_id)
        if fw.fw_id not in with_db:
            continue
        fw.tasks = [t for t in fw.tasks if not isinstance(t, RecordOracleResult)]
        final = not (_descendants(wf, fw.fw_id) & with_db)
        fw.tasks.append(RecordOracleResult(candidate_id=str(candidate_id), db_file=db_file, final=final))
        fw.spec["_add_launchpad_and_fw_id"] = True
    return wf


def candidate_id_of_firework(fw) -> str | None:
    """The candidate a handed-off Firework computes (from its spec, else its RecordOracleResult)."""
    spec = fw.spec if hasattr(fw, "spec") else fw.get("spec", {})
    if spec.get(keys.TASKDOC_CANDIDATE_ID):
        return str(spec[keys.TASKDOC_CANDIDATE_ID])
    tasks = fw.tasks if hasattr(fw, "tasks") else spec.get("_tasks", [])
    for task in tasks:
        if "RecordOracleResult" in str(task.get("_fw_name", task)) and task.get("candidate_id"):
            return str(task["candidate_id"])
    return None
