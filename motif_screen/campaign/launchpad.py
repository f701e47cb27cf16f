"""What the campaign steps need to know from the LaunchPad of the worker they run on."""

from __future__ import annotations

import logging

from motif_screen import keys

log = logging.getLogger(__name__)
_override = None


def use_launchpad(lpad) -> None:
    """Pin the LaunchPad (``motif-screen run`` and tests); workers otherwise auto-load theirs."""
    global _override
    _override = lpad


def current_launchpad():
    """The LaunchPad this worker pulls from (FireWorks' own config search), or None if there is none."""
    if _override is not None:
        return _override
    from fireworks import LaunchPad

    try:
        return LaunchPad.auto_load()
    except Exception as exc:  # no my_launchpad.yaml: steps degrade to "nothing known"
        log.warning("no LaunchPad configuration found (%s); cannot check Fireworks", exc)
        return None


def oracle_fireworks(candidate_ids: list[str], state: str | None = None) -> dict[str, list[int]]:
    """candidate id -> fw_ids of its oracle Fireworks on this worker's LaunchPad (optionally in ``state``)."""
    lpad = current_launchpad()
    if lpad is None or not candidate_ids:
        return {}
    query = {f"spec.{keys.TASKDOC_CANDIDATE_ID}": {"$in": list(candidate_ids)}}
    if state:
        query["state"] = state
    found: dict[str, list[int]] = {}
    for fw in lpad.fireworks.find(query, {"fw_id": 1, f"spec.{keys.TASKDOC_CANDIDATE_ID}": 1}):
        found.setdefault(fw["spec"][keys.TASKDOC_CANDIDATE_ID], []).append(fw["fw_id"])
    return found


def fizzle_reasons(candidate_ids: list[str]) -> dict[str, str]:
    """candidate id -> why its oracle Firework fizzled (FireWorks / custodian / atomate message)."""
    from motif_screen.handoff.failures import fizzle_reason

    lpad = current_launchpad()
    return {cid: "; ".join(fizzle_reason(lpad, fw_id) for fw_id in fw_ids)
            for cid, fw_ids in oracle_fireworks(candidate_ids, "FIZZLED").items()}
