"""Powerups for handed-off atomate workflows: pure ``wf -> wf`` functions, like atomate's own.

Most are atomate's powerups with our keys filled in (tags, task-document fields, priority, queue
options). Two are ours: :func:`track_candidate` appends :class:`~motif_screen.firetasks.oracle.LinkTaskDocument`
after every ``VaspToDb``, and :func:`guard_steps` puts :class:`~motif_screen.firetasks.oracle.GuardOracleStep`
in front of every step, so a failure at any step reaches the collector and a finished calculation
is never run again.

atomate is imported where a powerup needs it (7–9 s for ``atomate.vasp``); importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.firetasks.oracle import GuardOracleStep, LinkTaskDocument
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


def add_reference_fields(wf, *, reference_key: str):
    """Each task document of an elemental-reference workflow names the reference it computes."""
    return _common_powerups().add_additional_fields_to_taskdocs(
        wf, {keys.TASKDOC_REFERENCE: reference_key}, task_name_constraint=VASP_TO_DB
    )


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


def _link_params(candidate_id=None, reference_key=None) -> dict:
    if (candidate_id is None) == (reference_key is None):
        raise InputError("a handed-off workflow computes either a candidate or a reference, named once")
    return {"candidate_id": str(candidate_id)} if candidate_id is not None else {"reference_key": reference_key}


def track_candidate(wf, candidate_id=None, db_file: str = DB_FILE_PLACEHOLDER, *, reference_key: str | None = None):
    """Append ``LinkTaskDocument`` after every ``VaspToDb`` and name the candidate in every spec; idempotent.

    The task document is linked to its candidate (or reference) the moment it exists; the values
    are recorded once the whole workflow has finished, by the round's collector.
    """
    params = _link_params(candidate_id, reference_key)
    with_db = _vasp_to_db_fw_ids(wf)
    if not with_db:
        raise InputError("the workflow has no VaspToDb step, so its results could never be linked to a candidate")
    spec_key = keys.TASKDOC_CANDIDATE_ID if candidate_id is not None else keys.TASKDOC_REFERENCE
    for fw in wf.fws:
        fw.spec[spec_key] = params.get("candidate_id") or reference_key
        if fw.fw_id in with_db:
            fw.tasks = [t for t in fw.tasks if not isinstance(t, LinkTaskDocument)]
            fw.tasks.append(LinkTaskDocument(db_file=db_file, **params))
    return wf


def guard_steps(
    wf,
    candidate_id=None,
    db_file: str = DB_FILE_PLACEHOLDER,
    *,
    reference_key: str | None = None,
    source: str = keys.SOURCE_VASP,
):
    """Every Firework starts with ``GuardOracleStep``; every non-root one runs even if a parent fizzled.

    FireWorks lets a child run after a fizzled parent only if the child allows it, and only for its
    direct parents; with the guard in front, such a child fizzles at once naming its parent, so a
    failure at any step travels down to the collector instead of leaving the workflow WAITING.
    """
    params = _link_params(candidate_id, reference_key)
    roots = set(wf.root_fw_ids)
    for fw in wf.fws:
        fw.tasks = [
            GuardOracleStep(db_file=db_file, source=source, **params),
            *[t for t in fw.tasks if not isinstance(t, GuardOracleStep)],
        ]
        fw.spec["_add_launchpad_and_fw_id"] = True  # the guard asks the LaunchPad about its parents
        if fw.fw_id not in roots:
            fw.spec["_allow_fizzled_parents"] = True
    return wf


def candidate_id_of_firework(fw) -> str | None:
    """The candidate a handed-off Firework computes (from its spec)."""
    spec = fw.spec if hasattr(fw, "spec") else fw.get("spec", {})
    value = spec.get(keys.TASKDOC_CANDIDATE_ID)
    return str(value) if value else None
