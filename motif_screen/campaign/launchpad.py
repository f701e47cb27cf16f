"""What the campaign steps read from the LaunchPad: the oracle Fireworks of candidates and references,
their states, why they fizzled, and runs that were lost.

A step gets the LaunchPad its Firework runs on (FireWorks hands it to the task through
``_add_launchpad_and_fw_id``); nothing here writes to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from motif_screen import keys

MAX_REASON = 500
SKIPPED_MARK = "not run: its parent step"  # the message of a step stopped by a fizzled parent
WAITING_STATES = ("WAITING", "READY", "RESERVED", "RUNNING", "PAUSED", "DEFUSED")


@dataclass(frozen=True)
class OracleFirework:
    fw_id: int
    name: str
    state: str


class FireworksView:
    """Read-only questions about the oracle Fireworks on one LaunchPad."""

    def __init__(self, launchpad):
        self.launchpad = launchpad

    def _fireworks(self, field: str, values: list[str]) -> dict[str, list[OracleFirework]]:
        found: dict[str, list[OracleFirework]] = {}
        if not values:
            return found
        query = {f"spec.{field}": {"$in": [str(v) for v in values]}}
        for fw in self.launchpad.fireworks.find(query, {"fw_id": 1, "name": 1, "state": 1, f"spec.{field}": 1}):
            found.setdefault(fw["spec"][field], []).append(OracleFirework(fw["fw_id"], fw.get("name", ""), fw["state"]))
        for fws in found.values():
            fws.sort(key=lambda f: f.fw_id)
        return found

    def of_candidates(self, candidate_ids: list[str]) -> dict[str, list[OracleFirework]]:
        """candidate id -> the Fireworks of its oracle workflow, in fw_id order."""
        return self._fireworks(keys.TASKDOC_CANDIDATE_ID, candidate_ids)

    def of_references(self, reference_keys: list[str]) -> dict[str, list[OracleFirework]]:
        return self._fireworks(keys.TASKDOC_REFERENCE, reference_keys)

    def fizzle_reason(self, fw_id: int) -> str:
        """One line: the step's name and the last line of the exception FireWorks stored."""
        fw = self.launchpad.get_fw_by_id(fw_id)
        message = "no exception was stored"
        for launch in reversed(fw.launches or []):
            data = (launch.action.stored_data if launch.action else {}) or {}
            trace = str((data.get("_exception") or {}).get("_stacktrace") or "").strip()
            if trace:
                message = trace.splitlines()[-1].strip()
                break
        return f"{fw.name} (Firework {fw_id}) fizzled: {message}"[:MAX_REASON]

    def failure(self, fireworks: list[OracleFirework]) -> str | None:
        """Why a workflow failed: the steps that fizzled themselves first, those stopped by them after."""
        fizzled = [fw for fw in fireworks if fw.state == "FIZZLED"]
        if not fizzled:
            return None
        reasons = [self.fizzle_reason(fw.fw_id) for fw in fizzled]
        own = [r for r in reasons if SKIPPED_MARK not in r]
        return "; ".join(own or reasons)[:2000]

    def lost_fw_ids(self, expiration_secs: int) -> set[int]:
        """Fireworks whose launch stopped reporting (FireWorks' ``detect_lostruns``, read-only)."""
        _, lost_fw_ids, _ = self.launchpad.detect_lostruns(
            expiration_secs=expiration_secs, fizzle=False, rerun=False, refresh=False
        )
        return set(lost_fw_ids)


def finished(fireworks: list[OracleFirework]) -> bool:
    """Every Firework of a workflow either completed or fizzled: nothing will change any more."""
    return bool(fireworks) and all(fw.state in ("COMPLETED", "FIZZLED") for fw in fireworks)
