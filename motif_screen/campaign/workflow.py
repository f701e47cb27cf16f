"""A campaign round as FireWorks objects.

    round r:  generate ─▶ prescreen ─▶ submit ══(additions)══▶ oracle workflows ─▶ collect+retrain+next
                                                                    (one per candidate)   (runs even if
                                                                                           some fizzle)
The last Firework's controller adds round r+1 the same way, until the budget, the rounds or the
target are used up. Every Firework carries only the campaign name, the round and ``>>db_file<<``;
everything else is read from MongoDB, so `lpad rerun_fws` on any of them is safe.
"""

from __future__ import annotations

from fireworks import Firework, Workflow

from motif_screen import keys
from motif_screen.settings import DB_FILE_PLACEHOLDER

SPEC_CAMPAIGN = "motif_screen_campaign"
SPEC_ROUND = "motif_screen_round"


def fw_name(campaign: str, round_index: int, step: str) -> str:
    return f"motif_screen {campaign} r{round_index} {step}"


def _spec(campaign: str, round_index: int, **extra) -> dict:
    return {SPEC_CAMPAIGN: campaign, SPEC_ROUND: round_index, **extra}


def round_workflow(campaign: str, round_index: int, db_file: str = DB_FILE_PLACEHOLDER) -> Workflow:
    """generate -> prescreen -> submit for one round."""
    from motif_screen.firetasks.campaign import GenerateCandidates, Prescreen, SubmitToOracle

    params = {"campaign": campaign, "round": round_index, "db_file": db_file}
    generate = Firework([GenerateCandidates(**params)], name=fw_name(campaign, round_index, "generate"),
                        spec=_spec(campaign, round_index))
    prescreen = Firework([Prescreen(**params)], name=fw_name(campaign, round_index, "prescreen"),
                         spec=_spec(campaign, round_index), parents=[generate])
    submit = Firework([SubmitToOracle(**params)], name=fw_name(campaign, round_index, "submit"),
                      spec=_spec(campaign, round_index), parents=[prescreen])
    return Workflow([generate, prescreen, submit], name=f"motif_screen {campaign} round {round_index}",
                    metadata={SPEC_CAMPAIGN: campaign, SPEC_ROUND: round_index})


def campaign_workflow(spec, db_file: str = DB_FILE_PLACEHOLDER) -> Workflow:
    """What a workflow file holds: create the campaign, then its first round."""
    from motif_screen.firetasks.campaign import CreateCampaign

    first = round_workflow(spec.name, 0, db_file)
    create = Firework([CreateCampaign(spec=spec.model_dump(mode="json"), db_file=db_file)],
                      name=fw_name(spec.name, 0, "create campaign"), spec=_spec(spec.name, 0))
    links = {create.fw_id: [first.root_fw_ids[0]], **first.links}
    return Workflow([create, *first.fws], links_dict=links, name=f"motif_screen campaign {spec.name}",
                    metadata={SPEC_CAMPAIGN: spec.name})


def collect_firework(campaign: str, round_index: int, db_file: str = DB_FILE_PLACEHOLDER) -> Firework:
    """Collect results, retrain, decide on the next round — runs even when some oracle runs fizzled."""
    from motif_screen.firetasks.campaign import CampaignController, CollectOracleResults, Retrain

    params = {"campaign": campaign, "round": round_index, "db_file": db_file}
    return Firework(
        [CollectOracleResults(**params), Retrain(**params), CampaignController(**params)],
        name=fw_name(campaign, round_index, "collect-retrain-next"),
        spec=_spec(campaign, round_index, _allow_fizzled_parents=True),
    )


def chgnet_oracle_firework(candidate_id: str, campaign: str, round_index: int, priority: int | None,
                           steps: int, db_file: str = DB_FILE_PLACEHOLDER) -> Firework:
    """The local stand-in oracle: one Firework with a CHGNet relaxation (never labelled DFT)."""
    from motif_screen.firetasks.oracle import RunChgnetOracle

    spec = _spec(campaign, round_index, **{keys.TASKDOC_CANDIDATE_ID: candidate_id})
    if priority is not None:
        spec["_priority"] = priority
    return Firework([RunChgnetOracle(candidate_id=candidate_id, db_file=db_file, steps=steps)],
                    name=f"chgnet relax {candidate_id}", spec=spec)


def with_collector(oracle_workflows: list[Workflow], collector: Firework) -> Workflow:
    """One Workflow: every oracle workflow's leaves become parents of the collector."""
    fws, links = [], {}
    for wf in oracle_workflows:
        fws.extend(wf.fws)
        for parent, children in wf.links.items():
            links.setdefault(parent, []).extend(children)
        for leaf in wf.leaf_fw_ids:
            links.setdefault(leaf, []).append(collector.fw_id)
    fws.append(collector)
    return Workflow(fws, links_dict=links, name=collector.name)
