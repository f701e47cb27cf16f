"""Campaign specs, the workflow files in workflows/, and the Firetasks' declared parameters."""

import subprocess
import sys
from pathlib import Path

import pytest
from fireworks import Workflow

from motif_screen.campaign.spec import parse_spec
from motif_screen.workflows.campaign import campaign_workflow
from motif_screen.cli.main import main
from motif_screen.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.yaml"))
BASE = {"name": "t", "target": {"property": "band_gap", "goal": "range", "lower": 1.0, "upper": 3.0},
        "budget": 10, "rounds": 2}


def test_spec_budget_split_and_controls():
    spec = parse_spec({**BASE, "budget": 11, "rounds": 3})
    assert [spec.round_budget(r) for r in range(3)] == [3, 3, 5]
    assert spec.control_count(5) == 1 and spec.control_count(1) == 0
    assert spec.target.is_hit(2.0) and not spec.target.is_hit(3.5) and not spec.target.is_hit(None)


@pytest.mark.parametrize("change,message", [
    ({"budget": 0}, "budget"),
    ({"name": "bad name"}, "name"),
    ({"target": {"property": "colour", "goal": "minimize", "upper": 1}}, "unknown target property"),
    ({"target": {"property": "band_gap", "goal": "minimize"}}, "needs `upper`"),
    ({"target": {"property": "band_gap", "goal": "range", "lower": 3, "upper": 1}}, "lower is above upper"),
    ({"generation": {"mode": "constrained"}}, "needs target.composition"),
    ({"oracle": "gaussian"}, "oracle"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_specs_are_one_clear_message(change, message):
    with pytest.raises(InputError, match=message):
        parse_spec({**BASE, **change})


def test_workflow_files_exist_and_load_as_lpad_add_reads_them():
    assert len(WORKFLOWS) >= 3
    for path in WORKFLOWS:
        wf = Workflow.from_file(str(path))
        names = [fw.name for fw in wf.fws]
        assert any(n.endswith("create campaign") for n in names) and any(n.endswith("generate") for n in names)
        spec = parse_spec(wf.fws[[n.endswith("create campaign") for n in names].index(True)].tasks[0]["spec"])
        assert spec.name in path.read_text()
        for fw in wf.fws:
            for task in fw.tasks:
                if "db_file" in task:
                    assert task["db_file"] == ">>db_file<<"  # resolved per worker, never a local path


def test_workflow_files_match_the_cli(tmp_path):
    """workflows/regenerate.sh is the recipe: what the CLI writes today equals what is checked in."""
    env_bin = Path(sys.executable).parent
    out = subprocess.run(["bash", str(ROOT / "workflows" / "regenerate.sh"), str(tmp_path)], capture_output=True,
                         text=True, env={"PATH": f"{env_bin}:/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=300)
    assert out.returncode == 0, out.stderr
    fresh = sorted(tmp_path.glob("*.yaml"))
    assert [p.name for p in fresh] == [p.name for p in WORKFLOWS]
    for new, old in zip(fresh, WORKFLOWS):
        assert new.read_text() == old.read_text(), f"{old.name} is stale: run workflows/regenerate.sh"


def test_workflow_create_refuses_bad_input(tmp_path, capsys):
    assert main(["workflow", "create", "-o", str(tmp_path / "x.txt")]) == 2
    assert main(["workflow", "create", "-o", str(tmp_path / "x.yaml"), "--budget", "0"]) == 2
    assert main(["workflow", "create", "-o", str(tmp_path / "x.yaml"), "--goal", "range", "--hit-above", "5",
                 "--hit-below", "1"]) == 2
    err = capsys.readouterr().err
    assert ".yaml, .yml or .json" in err and "budget" in err and "lower is above upper" in err
    assert not list(tmp_path.iterdir())
    assert main(["workflow", "create", "-o", str(tmp_path / "x.json"), "--oracle", "chgnet"]) == 0
    assert main(["workflow", "create", "-o", str(tmp_path / "x.json")]) == 2  # exists, no --force


def test_firetasks_declare_their_parameters():
    from motif_screen.firetasks.campaign import GenerateCandidates

    GenerateCandidates(campaign="c", round=0)
    with pytest.raises(Exception, match="Required parameter round"):
        GenerateCandidates(campaign="c")
    with pytest.raises(Exception):
        GenerateCandidates(campaign="c", round=0, colour="blue")


def test_campaign_workflow_shape():
    """create -> every round's generate -> prescreen -> submit -> collect, chained; the collector
    runs whatever its parents (the oracle detours) end like, and both it and submit get the LaunchPad."""
    wf = campaign_workflow(parse_spec({**BASE, "rounds": 3, "budget": 9}))
    by_name = {fw.name.removeprefix("motif_screen t "): fw for fw in wf.fws}
    chain = ["r0 create campaign"] + [f"r{r} {step}" for r in range(3)
                                      for step in ("generate", "prescreen", "submit", "collect-retrain-finish")]
    assert sorted(by_name) == sorted(chain)
    for parent, child in zip(chain, chain[1:]):
        assert wf.links[by_name[parent].fw_id] == [by_name[child].fw_id]
    for r in range(3):
        collect, submit = by_name[f"r{r} collect-retrain-finish"], by_name[f"r{r} submit"]
        assert collect.spec["_allow_fizzled_parents"] and collect.spec["_add_launchpad_and_fw_id"]
        assert submit.spec["_add_launchpad_and_fw_id"]
        assert [t.fw_name for t in collect.tasks] == ["{{motif_screen.firetasks.campaign.CollectOracleResults}}",
                                                       "{{motif_screen.firetasks.campaign.Retrain}}",
                                                       "{{motif_screen.firetasks.campaign.CampaignController}}"]


def test_spec_refuses_what_would_fail_later():
    """Checked whole before anything is stored: NaN/inf thresholds, a motif that does not parse, a
    budget leaving a round without a calculation, seeds numpy cannot take."""
    for change, message in [({"target": {**BASE["target"], "upper": float("nan")}}, "not a finite number"),
                            ({"target": {**BASE["target"], "lower": float("-inf")}}, "not a finite number"),
                            ({"kappa": float("inf")}, "not a finite number"),
                            ({"motif": "garbage!!"}, "motif"),
                            ({"budget": 1, "rounds": 3}, "no oracle calculation"),
                            ({"seed": 2**70}, "seed"),
                            ({"rounds": 101, "budget": 1000}, "rounds")]:
        with pytest.raises(InputError, match=message):
            parse_spec({**BASE, **change})
