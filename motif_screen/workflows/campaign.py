"""A campaign as one FireWorks workflow, built whole when it is created::

    create ─▶ round 0: generate 1/N ┐
                       generate 2/N ├─▶ prescreen ─▶ submit ─▶ collect·retrain·finish ─▶ round 1: …
                       …            ┘                  ╰─ detours: one oracle workflow per candidate ─╯
                                                          (and per missing elemental reference)

The N generation shards (``shards`` in the campaign spec) are independent Fireworks that any
``rlaunch`` worker can take; the prescreen waits for all of them and merges their chunks.

``submit`` inserts the oracle workflows between itself and the round's collector (FireWorks'
detours), so the collector waits for every one of them; with ``_allow_fizzled_parents`` and the
guard in front of every oracle step, it runs however they end. After the last round (or with the
budget spent) the campaign is completed and any later step does nothing.

Every Firework carries only the campaign name, the round and ``>>db_file<<``; everything else is
read from MongoDB, so ``lpad rerun_fws`` on any of them is safe.
"""

from __future__ import annotations

from fireworks import FiretaskBase, Firework, FWAction, Workflow, explicit_serialize

from motif_screen import keys
from motif_screen.campaign import steps
from motif_screen.campaign.names import fw_name, generate_step
from motif_screen.campaign.spec import CampaignSpec
from motif_screen.firetasks.campaign import (
    CampaignController,
    CollectOracleResults,
    CreateCampaign,
    GenerateCandidates,
    Prescreen,
    Retrain,
    fireworks_view,
)
from motif_screen.firetasks.common import worker_repository
from motif_screen.handoff.atomate_wf import build_oracle_workflow, build_reference_workflow, preset_for_target
from motif_screen.handoff.chgnet_wf import chgnet_oracle_workflow
from motif_screen.settings import DB_FILE_PLACEHOLDER

SPEC_CAMPAIGN = "motif_screen_campaign"
SPEC_ROUND = "motif_screen_round"


def _spec(campaign: str, round_index: int, **extra) -> dict:
    return {SPEC_CAMPAIGN: campaign, SPEC_ROUND: round_index, **extra}


@explicit_serialize
class SubmitToOracle(FiretaskBase):
    """Hand the round's selected candidates (and missing elemental references) to the oracle.

    The step marks them submitted; this task builds one workflow each (atomate + VASP, or CHGNet)
    and inserts them as detours, so the round's collector waits for all of them.
    """

    required_params = ["campaign", "round"]
    optional_params = ["db_file"]

    def run_task(self, fw_spec):
        db_file = self.get("db_file", DB_FILE_PLACEHOLDER)
        with worker_repository(self, fw_spec) as repo:
            spec = steps.load_spec(repo, self["campaign"])
            preset = (
                spec.atomate.preset or preset_for_target(spec.target.property)
                if spec.oracle == keys.SOURCE_VASP
                else None
            )
            plan = steps.submit_round(repo, fireworks_view(self), self["campaign"], int(self["round"]), preset)
            workflows = []
            for cand in plan.candidates:
                if spec.oracle == keys.SOURCE_CHGNET:
                    workflows.append(
                        chgnet_oracle_workflow(
                            cand["id"], spec.name, cand["priority"], spec.chgnet_steps, db_file=db_file
                        )
                    )
                    continue
                wf = build_oracle_workflow(
                    cand["structure"],
                    spec.target.property,
                    candidate_id=cand["id"],
                    campaign=spec.name,
                    model_version=cand["model_version"],
                    priority=cand["priority"],
                    db_file=db_file,
                    queue_options=spec.atomate.queue_options,
                    preset=preset,
                )
                repo.update_candidate(cand["id"], handoff=wf.metadata["motif_screen_handoff"])
                workflows.append(wf)
            for ref in plan.references:
                workflows.append(
                    build_reference_workflow(
                        ref["element"],
                        ref["structure"],
                        reference_key=ref["key"],
                        preset=preset,
                        db_file=db_file,
                        queue_options=spec.atomate.queue_options,
                    )
                )
        return FWAction(stored_data={"result": plan.summary()}, detours=workflows)


def round_fireworks(spec: CampaignSpec, round_index: int, db_file: str = DB_FILE_PLACEHOLDER) -> list[Firework]:
    """generate (one Firework per shard) -> prescreen (merge and select) -> submit -> collect (runs
    however the oracle workflows end). Shards carry ``spec.shard_category`` as their ``_category``
    and the collector ``spec.train_category``, so GPU workers can take generation and retraining."""
    campaign = spec.name
    params = {"campaign": campaign, "round": round_index, "db_file": db_file}
    shard_spec = {"_category": spec.shard_category} if spec.shard_category else {}
    shards = [
        Firework(
            [GenerateCandidates(**params, shard=k)],
            name=fw_name(campaign, round_index, generate_step(k, spec.shards)),
            spec=_spec(campaign, round_index, **shard_spec),
        )
        for k in range(spec.shards)
    ]
    prescreen = Firework(
        [Prescreen(**params)],
        name=fw_name(campaign, round_index, "prescreen"),
        spec=_spec(campaign, round_index),
        parents=shards,
    )
    submit = Firework(
        [SubmitToOracle(**params)],
        name=fw_name(campaign, round_index, "submit"),
        spec=_spec(campaign, round_index, _add_launchpad_and_fw_id=True),
        parents=[prescreen],
    )
    train_spec = {"_category": spec.train_category} if spec.train_category else {}
    collect = Firework(
        [CollectOracleResults(**params), Retrain(**params), CampaignController(**params)],
        name=fw_name(campaign, round_index, "collect-retrain-finish"),
        spec=_spec(campaign, round_index, _allow_fizzled_parents=True, _add_launchpad_and_fw_id=True, **train_spec),
        parents=[submit],
    )
    return [*shards, prescreen, submit, collect]


def campaign_workflow(spec: CampaignSpec, db_file: str = DB_FILE_PLACEHOLDER) -> Workflow:
    """What a workflow file holds: create the campaign, then every round, one after the other."""
    create = Firework(
        [CreateCampaign(spec=spec.model_dump(mode="json"), db_file=db_file)],
        name=fw_name(spec.name, 0, "create campaign"),
        spec=_spec(spec.name, 0),
    )
    fws, previous = [create], create
    for round_index in range(spec.rounds):
        round_fws = round_fireworks(spec, round_index, db_file)
        for shard in round_fws[: spec.shards]:
            shard.parents = [previous]
        fws.extend(round_fws)
        previous = round_fws[-1]
    return Workflow(fws, name=f"motif_screen campaign {spec.name}", metadata={SPEC_CAMPAIGN: spec.name})
