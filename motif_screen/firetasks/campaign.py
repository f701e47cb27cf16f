"""Campaign Firetasks: thin adaptors, one stage each, over :mod:`motif_screen.campaign.steps`.

Each task takes the campaign name, the round and ``db_file`` (atomate's ``">>db_file<<"``
placeholder, resolved from the worker's env), opens the database, runs one pure-ish step,
flushes (so a killed worker loses at most this Firework) and returns an ``FWAction``. All of
them are safe to re-run: the steps are idempotent.
"""

from __future__ import annotations

from fireworks import FiretaskBase, FWAction, explicit_serialize

from motif_screen.firetasks.common import open_worker_db
from motif_screen.settings import DB_FILE_PLACEHOLDER

_PARAMS = ["campaign", "round"]
_OPTIONAL = ["db_file"]


class _CampaignTask(FiretaskBase):
    required_params = _PARAMS
    optional_params = _OPTIONAL
    step = None  # name of the function in motif_screen.campaign.steps

    def run_task(self, fw_spec):
        from motif_screen.campaign import steps

        conn = open_worker_db(self.get("db_file", DB_FILE_PLACEHOLDER), fw_spec)
        try:
            result = getattr(steps, self.step)(self["campaign"], int(self["round"]), conn=conn)
        finally:
            conn.flush()
        return self.to_action(result)

    def to_action(self, result) -> FWAction:
        return FWAction(stored_data={"result": result})


@explicit_serialize
class GenerateCandidates(_CampaignTask):
    """Propose ``candidates_per_round`` structures with the campaign's generation mode and model."""

    step = "generate_round"


@explicit_serialize
class Prescreen(_CampaignTask):
    """Validity, motifs, de-duplication, predictions with uncertainty, acquisition, selection."""

    step = "prescreen_round"


@explicit_serialize
class SubmitToOracle(_CampaignTask):
    """Hand the selected candidates to the oracle (atomate + VASP, or CHGNet) as new workflows."""

    step = "submit_round"

    def to_action(self, result) -> FWAction:
        workflow = result.pop("workflow")
        return FWAction(stored_data={"result": result}, additions=[workflow] if workflow else [])


@explicit_serialize
class CollectOracleResults(_CampaignTask):
    """Link atomate task documents / CHGNet results to candidates; mark fizzled runs failed."""

    step = "collect_round"


@explicit_serialize
class Retrain(_CampaignTask):
    """Fine-tune on every oracle result so far; register and promote the new model if it is better."""

    step = "retrain_round"


@explicit_serialize
class CampaignController(_CampaignTask):
    """Write the round's funnel record and add the next round until budget, rounds or target run out."""

    step = "next_round"

    def to_action(self, result) -> FWAction:
        workflow = result.pop("workflow")
        return FWAction(stored_data={"result": result}, additions=[workflow] if workflow else [])


@explicit_serialize
class CreateCampaign(FiretaskBase):
    """The first Firework of a workflow file: store the campaign spec, register the shipped model."""

    required_params = ["spec"]
    optional_params = _OPTIONAL

    def run_task(self, fw_spec):
        from motif_screen.campaign.spec import parse_spec
        from motif_screen.campaign.store import save_campaign
        from motif_screen.pretrained import SHIPPED, ensure_registered

        spec = parse_spec(dict(self["spec"]))
        conn = open_worker_db(self.get("db_file", DB_FILE_PLACEHOLDER), fw_spec)
        try:
            if spec.model.name in SHIPPED:
                ensure_registered(spec.model.name)
            _, created = save_campaign(spec)
        finally:
            conn.flush()
        return FWAction(stored_data={"campaign": spec.name, "created": created})
