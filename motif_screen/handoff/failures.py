"""Fizzled hand-off Fireworks -> failed candidates, with the reason FireWorks/custodian recorded.

A Firework that fizzles never reaches its ``RecordOracleResult`` step, so the collector reads the
reason from the LaunchPad instead: the last line of the stored exception (atomate's VaspToDb,
custodian's ``MaxCorrectionsError`` / ``NonZeroExitError`` …) plus the task document's state when
VaspToDb got as far as writing one.
"""

from __future__ import annotations

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.handoff.powerups import candidate_id_of_firework

MAX_REASON = 500


def fizzle_reason(launchpad, fw_id: int) -> str:
    """One line saying why Firework ``fw_id`` fizzled (its name and the exception's last line)."""
    fw = launchpad.get_fw_by_id(fw_id)
    if fw.state != "FIZZLED":
        raise InputError(f"Firework {fw_id} ({fw.name}) is {fw.state}, not FIZZLED")
    message = "no exception was stored"
    for launch in reversed(fw.launches or []):
        data = (launch.action.stored_data if launch.action else {}) or {}
        exc = data.get("_exception") or {}
        trace = str(exc.get("_stacktrace") or "").strip()
        if trace:
            message = trace.splitlines()[-1].strip()
            break
    return f"Firework {fw_id} ({fw.name}) fizzled: {message}"[:MAX_REASON]


def record_fizzled_firework(launchpad, fw_id: int, source: str = keys.SOURCE_VASP):
    """Mark the candidate of a fizzled hand-off Firework failed (idempotent); returns the OracleResult."""
    from motif_screen.db.records import record_oracle_result

    fw = launchpad.get_fw_by_id(fw_id)
    candidate_id = candidate_id_of_firework(fw)
    if candidate_id is None:
        raise InputError(f"Firework {fw_id} ({fw.name}) was not handed off by motif_screen: it names no candidate")
    return record_oracle_result(
        candidate_id, source, run_status="failed", fw_id=fw_id, errors=[fizzle_reason(launchpad, fw_id)]
    )
