"""A campaign round handed to atomate: real atomate workflows, VASP replaced by the fake-VASP kit.

The steps run in-process as the Firetasks run them; the atomate workflows that `submit_round`
builds get atomate's `use_potcar_spec` + `use_fake_vasp` powerups (exactly what atomate's own tests
do) before they go on the LaunchPad, and FireWorks' rapidfire runs them with the collector.
"""

import pytest

from motif_screen import keys

pytestmark = pytest.mark.slow


def test_vasp_round_links_atomate_task_documents(db, config_dir, tmp_path, monkeypatch):
    import mongomock.gridfs
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    from motif_screen.campaign import steps
    from motif_screen.campaign.launchpad import use_launchpad
    from motif_screen.campaign.spec import parse_spec
    from motif_screen.campaign.store import save_campaign
    from motif_screen.db import launchpad_for
    from motif_screen.db.documents import Campaign, Candidate, OracleResult
    from motif_screen.pretrained import ensure_registered
    from motif_screen.testing.fake_vasp import use_fake_vasp_for_tests

    mongomock.gridfs.enable_gridfs_integration()
    lpad = launchpad_for(db, config_dir / "my_launchpad.yaml")
    use_launchpad(lpad)
    try:
        ensure_registered("perov5")
        spec = parse_spec({"name": "vasp-demo", "oracle": "vasp", "budget": 2, "rounds": 1, "candidates_per_round": 12,
                           "control_fraction": 0.0, "generation": {"flow_steps": 2},
                           "target": {"property": keys.FORMATION_ENERGY, "goal": "minimize", "upper": 0.0}})
        save_campaign(spec)
        steps.generate_round(spec.name, 0)
        counts = steps.prescreen_round(spec.name, 0)
        assert counts["selected"] == 2
        submitted = steps.submit_round(spec.name, 0, conn=db)
        assert submitted["submitted"] == 2
        wf = use_fake_vasp_for_tests(submitted["workflow"], tmp_path / "refs", energy_fn=lambda s: -6.0 * len(s))
        lpad.add_wf(wf)
        launches = tmp_path / "launches"
        launches.mkdir()
        monkeypatch.chdir(launches)
        rapidfire(lpad, FWorker(env={"db_file": str(config_dir / "db.json"), "vasp_cmd": "vasp_std"}),
                  strm_lvl="CRITICAL")
    finally:
        use_launchpad(None)

    sent = list(Candidate.objects(campaign="vasp-demo", selection__in=list(keys.SELECTIONS)))
    assert len(sent) == 2
    tasks = db.db[db.tasks_collection]
    for cand in sent:
        docs = list(tasks.find({keys.TASKDOC_CANDIDATE_ID: str(cand.id)}))
        assert len(docs) == 2  # structure optimization + static, written by atomate's VaspToDb
        assert all(d[keys.TASKDOC_CAMPAIGN] == "vasp-demo" for d in docs)
        result = OracleResult.objects.get(candidate=cand.id)
        assert result.source == keys.SOURCE_VASP and result.is_dft and result.task_id
        assert result.energy_per_atom == pytest.approx(-6.0)
        assert cand.reload().status == keys.STATUS_COMPUTED and cand.oracle["source"] == "vasp"
    assert Campaign.objects.get(name="vasp-demo").status == "completed"  # the collector and controller ran
    assert not [fw for fw in lpad.fireworks.find({"state": {"$ne": "COMPLETED"}})]
