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


def _last_error(launch: dict) -> str:
    data = (launch.get("action") or {}).get("stored_data") or {}
    exc = data.get("_exception") or {}
    trace = str(exc.get("_stacktrace") or "").strip().splitlines()
    return trace[-1] if trace else f"Firework fizzled (launch {launch.get('launch_id')})"


def fizzle_reasons(candidate_ids: list[str]) -> dict[str, str]:
    """candidate id -> the error of its fizzled oracle Firework (custodian / FireWorks message)."""
    lpad = current_launchpad()
    if lpad is None or not candidate_ids:
        return {}
    reasons = {}
    query = {f"spec.{keys.TASKDOC_CANDIDATE_ID}": {"$in": candidate_ids}, "state": "FIZZLED"}
    for fw in lpad.fireworks.find(query, {"spec": 1, "launches": 1, "name": 1}):
        cid = fw["spec"][keys.TASKDOC_CANDIDATE_ID]
        launches = list(lpad.launches.find({"launch_id": {"$in": fw.get("launches", [])}}).sort("launch_id", -1))
        reason = _last_error(launches[0]) if launches else "Firework fizzled"
        reasons[cid] = f"{fw.get('name', 'Firework')}: {reason}"
    return reasons
