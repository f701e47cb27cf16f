"""`motif-screen run` judges the campaign by its own steps: a failed oracle calculation is a failed
candidate (the collector records it), never a failed campaign."""

from __future__ import annotations

from fireworks import Firework, ScriptTask, Workflow


def test_a_fizzled_oracle_firework_is_not_a_failed_campaign_step(db, config_dir):
    from motif_screen.campaign.spec import parse_spec
    from motif_screen.cli.run import campaign_failures, campaign_fireworks
    from motif_screen.db import launchpad_for
    from motif_screen.workflows.campaign import SPEC_CAMPAIGN, campaign_workflow

    lpad = launchpad_for(db, config_dir / "my_launchpad.yaml")
    spec = parse_spec({"name": "disc", "budget": 4, "rounds": 2,
                       "target": {"property": "formation_energy_per_atom", "goal": "minimize", "upper": -1.0}})
    lpad.add_wf(campaign_workflow(spec))
    # an oracle Firework inserted by the round: it carries the campaign in its spec, as detours do
    oracle = Firework([ScriptTask.from_str("true")], name="chgnet relax 0123", spec={SPEC_CAMPAIGN: "disc"})
    lpad.add_wf(Workflow([oracle]))
    [oracle_id] = [fw["fw_id"] for fw in lpad.fireworks.find({"name": "chgnet relax 0123"}, {"fw_id": 1})]
    lpad.fireworks.update_one({"fw_id": oracle_id}, {"$set": {"state": "FIZZLED"}})

    steps = campaign_fireworks(lpad, "disc")
    assert len(steps) == 1 + 4 * 2 and all(fw["name"].startswith("motif_screen disc r") for fw in steps)
    assert campaign_fireworks(lpad, "disc", ["FIZZLED"]) == []
    assert not any("chgnet relax" in line for line in campaign_failures(lpad, "disc"))

    [generate] = [fw["fw_id"] for fw in steps if fw["name"] == "motif_screen disc r1 generate"]
    lpad.fireworks.update_one({"fw_id": generate}, {"$set": {"state": "FIZZLED"}})
    assert [fw["fw_id"] for fw in campaign_fireworks(lpad, "disc", ["FIZZLED"])] == [generate]
