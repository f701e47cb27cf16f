"""The local stand-in oracle as a workflow: one Firework with a CHGNet relaxation (never labelled DFT)."""

from __future__ import annotations

from typing import Any

from fireworks import Firework, Workflow

from motif_screen import keys
from motif_screen.firetasks.oracle import RunChgnetOracle
from motif_screen.handoff.powerups import priority_from_acquisition
from motif_screen.settings import DB_FILE_PLACEHOLDER


def chgnet_oracle_workflow(
    candidate_id: str, campaign: str, acquisition: float | None, steps: int, db_file: str = DB_FILE_PLACEHOLDER
) -> Workflow:
    spec: dict[str, Any] = {keys.TASKDOC_CANDIDATE_ID: candidate_id, keys.TASKDOC_CAMPAIGN: campaign}
    if acquisition is not None:
        spec["_priority"] = priority_from_acquisition(acquisition)
    fw = Firework(
        [RunChgnetOracle(candidate_id=candidate_id, db_file=db_file, steps=steps)],
        name=f"chgnet relax {candidate_id}",
        spec=spec,
    )
    return Workflow([fw], name=f"chgnet relax {candidate_id}", metadata={keys.TASKDOC_CAMPAIGN: campaign})
