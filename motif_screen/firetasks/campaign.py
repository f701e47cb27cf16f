"""Campaign Firetasks: thin adaptors, one named step each, over :mod:`motif_screen.campaign.steps`.

Each task takes the campaign name, the round and ``db_file`` (atomate's ``">>db_file<<"``
placeholder, resolved from the worker's env), runs its step on the worker's database, and returns
an ``FWAction`` with the step's result. All of them are safe to re-run: the steps are idempotent.
The Firetask that hands candidates to the oracle builds workflows, so it lives with the workflow
builders (:class:`motif_screen.workflows.campaign.SubmitToOracle`).
"""

from __future__ import annotations

from fireworks import FiretaskBase, FWAction, explicit_serialize

from motif_screen.campaign import steps
from motif_screen.campaign.launchpad import FireworksView
from motif_screen.campaign.spec import parse_spec
from motif_screen.firetasks.common import worker_repository

CAMPAIGN_PARAMS = ["campaign", "round"]
OPTIONAL = ["db_file"]


def fireworks_view(task) -> FireworksView | None:
    """The LaunchPad FireWorks gave this task (``_add_launchpad_and_fw_id`` in the Firework's spec)."""
    launchpad = getattr(task, "launchpad", None)
    return FireworksView(launchpad) if launchpad is not None else None


@explicit_serialize
class CreateCampaign(FiretaskBase):
    """The first Firework of a campaign: store the spec, register the shipped model it names."""

    required_params = ["spec"]
    optional_params = OPTIONAL

    def run_task(self, fw_spec):
        spec = parse_spec(dict(self["spec"]))
        with worker_repository(self, fw_spec) as repo:
            return FWAction(stored_data=steps.create_campaign(repo, spec))


@explicit_serialize
class GenerateCandidates(FiretaskBase):
    """One generation shard of a round (``shard``, 0-based; default 0 of 1): propose its chunks of
    structures and assess each one on its own (validity, motifs, fingerprint, predictions)."""

    required_params = CAMPAIGN_PARAMS
    optional_params = [*OPTIONAL, "shard"]

    def run_task(self, fw_spec):
        with worker_repository(self, fw_spec) as repo:
            result = steps.generate_shard(repo, self["campaign"], int(self["round"]), int(self.get("shard", 0)))
        return FWAction(stored_data={"result": result})


@explicit_serialize
class Prescreen(FiretaskBase):
    """Merge the round's shards: de-duplication, novelty, motif filter, acquisition, selection;
    every candidate written, screened or rejected with the reason."""

    required_params = CAMPAIGN_PARAMS
    optional_params = OPTIONAL

    def run_task(self, fw_spec):
        with worker_repository(self, fw_spec) as repo:
            result = steps.select_round(repo, self["campaign"], int(self["round"]))
        return FWAction(stored_data={"result": result})


@explicit_serialize
class CollectOracleResults(FiretaskBase):
    """Record each handed-off candidate of the round as computed or failed (with the step and reason)."""

    required_params = CAMPAIGN_PARAMS
    optional_params = OPTIONAL

    def run_task(self, fw_spec):
        with worker_repository(self, fw_spec) as repo:
            result = steps.collect_round(repo, fireworks_view(self), self["campaign"], int(self["round"]))
        return FWAction(stored_data={"result": result})


@explicit_serialize
class Retrain(FiretaskBase):
    """Fine-tune on every oracle result so far; register and promote the new model if it is better."""

    required_params = CAMPAIGN_PARAMS
    optional_params = OPTIONAL

    def run_task(self, fw_spec):
        with worker_repository(self, fw_spec) as repo:
            result = steps.retrain_round(repo, self["campaign"], int(self["round"]))
        return FWAction(stored_data={"result": result})


@explicit_serialize
class CampaignController(FiretaskBase):
    """Write the round's funnel record; after the last round, mark the campaign completed."""

    required_params = CAMPAIGN_PARAMS
    optional_params = OPTIONAL

    def run_task(self, fw_spec):
        with worker_repository(self, fw_spec) as repo:
            result = steps.finish_round(repo, self["campaign"], int(self["round"]))
        return FWAction(stored_data={"result": result})
