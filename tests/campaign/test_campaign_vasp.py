"""Campaigns on the VASP path, run whole by FireWorks: real atomate workflows, VASP replaced by the
fake-VASP kit (atomate's `use_potcar_spec` + `use_fake_vasp`, as atomate's own tests do).

The only test hook: the oracle workflows the submit Firetask builds get the fake-VASP powerups
before FireWorks stores them (monkeypatched builders); everything else is the code path a cluster runs.
Values are checked against what pymatgen computes from the very files VASP (here the kit) wrote.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from motif_screen import keys

pytestmark = pytest.mark.slow

# per-atom energies of each element's ground state and the binding of every compound (eV/atom)
MU = {"Sr": -1.68, "Ti": -7.89, "O": -4.95}
BINDING = -1.2


def energy_fn(structure) -> float:
    comp = structure.composition
    binding = BINDING * comp.num_atoms if len(comp.elements) > 1 else 0.0
    return sum(MU[el.symbol] * n for el, n in comp.items()) + binding


@pytest.fixture
def fake_vasp_campaigns(db, config_dir, tmp_path, monkeypatch):
    """Run campaigns through FireWorks; returns (run, lpad, refs_by_workflow)."""
    import mongomock.gridfs
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    import motif_screen.workflows.campaign as campaign_wfs
    from motif_screen.db import launchpad_for
    from motif_screen.testing.fake_vasp import use_fake_vasp_for_tests

    mongomock.gridfs.enable_gridfs_integration()
    lpad = launchpad_for(db, config_dir / "my_launchpad.yaml")
    counter = itertools.count()
    refs_of: dict[str, Path] = {}
    fizzle: dict[str, list[str]] = {}

    def faked(builder):
        def build(*args, **kwargs):
            wf = builder(*args, **kwargs)
            root = tmp_path / "refs" / f"wf{next(counter)}"
            refs_of[wf.name] = root
            steps = next((v for k, v in fizzle.items() if k in wf.name), [])
            return use_fake_vasp_for_tests(wf, root, energy_fn, band_gap_fn=lambda s: 2.0, fizzle=steps)
        return build

    monkeypatch.setattr(campaign_wfs, "build_oracle_workflow", faked(campaign_wfs.build_oracle_workflow))
    monkeypatch.setattr(campaign_wfs, "build_reference_workflow", faked(campaign_wfs.build_reference_workflow))
    launches = tmp_path / "launches"
    launches.mkdir()
    monkeypatch.chdir(launches)
    worker = FWorker(env={"db_file": str(config_dir / "db.json"), "vasp_cmd": "vasp_std"})

    def run(spec_dict, fizzle_steps=None):
        from motif_screen.campaign.spec import parse_spec

        fizzle.clear()
        fizzle.update(fizzle_steps or {})
        spec = parse_spec(spec_dict)
        lpad.add_wf(campaign_wfs.campaign_workflow(spec))
        rapidfire(lpad, worker, strm_lvl="CRITICAL")
        return spec

    return run, lpad, refs_of


def campaign(name, target, upper, **extra):
    return {"name": name, "oracle": "vasp", "budget": 4, "rounds": 1, "candidates_per_round": 24,
            "control_fraction": 0.0, "retrain_epochs": 5,
            "generation": {"mode": "constrained", "flow_steps": 3},
            "target": {"property": target, "goal": "minimize", "upper": upper, "composition": "Sr-Ti-O"}, **extra}


def vasprun_entry(ref_root: Path, step: str):
    """The entry pymatgen reads from the outputs the kit wrote for ``step`` of a workflow."""
    from pymatgen.io.vasp.outputs import Vasprun

    [folder] = [p for p in ref_root.iterdir() if p.name.endswith(step.replace(" ", "_"))]
    return Vasprun(str(folder / "outputs" / "vasprun.xml"), parse_potcar_file=False).get_computed_entry(
        inc_structure=True)


def test_formation_energy_and_stability_campaigns_compute_references_and_retrain(fake_vasp_campaigns, db):
    from pymatgen.analysis.phase_diagram import PhaseDiagram
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    from motif_screen.db.documents import Campaign, Candidate, ModelVersion, OracleResult, ReferenceEntry

    run, lpad, refs_of = fake_vasp_campaigns
    run(campaign("fe-vasp", keys.FORMATION_ENERGY, -0.5))
    # the campaign computed the three elemental references itself, once each, with the same preset
    refs = list(ReferenceEntry.objects(source="vasp"))
    assert sorted(r.elements[0] for r in refs) == ["O", "Sr", "Ti"] and {r.status for r in refs} == {"computed"}
    assert len({(r.functional, r.input_set) for r in refs}) == 1
    run(campaign("hull-vasp", keys.ENERGY_ABOVE_HULL, 0.1, seed=7, candidates_per_round=96))
    assert ReferenceEntry.objects(source="vasp").count() == 3  # reused, not computed again
    assert not list(lpad.fireworks.find({"state": {"$ne": "COMPLETED"}}))

    compat = MaterialsProject2020Compatibility(check_potcar=False)
    reference_entries = compat.process_entries([
        vasprun_entry(refs_of[name], "static") for name in refs_of if "-reference-" in name])
    results = {str(r.candidate.id): r for r in OracleResult.objects(source="vasp")}
    assert len(results) == Candidate.objects(selection__in=list(keys.SELECTIONS)).count() >= 6
    entries = {}
    for name, root in refs_of.items():
        if "-reference-" in name:
            continue
        cid = name.rsplit("-", 1)[-1]
        [entry] = compat.process_entries([vasprun_entry(root, "static")])
        entries[cid] = entry
        result = results[cid]
        assert result.run_status == "successful" and result.awaiting_references == []
        assert result.energy == pytest.approx(entry.uncorrected_energy)  # from the static step
        expected = PhaseDiagram(reference_entries + [entry]).get_form_energy_per_atom(entry)
        assert result.formation_energy_per_atom == pytest.approx(expected, abs=1e-6)
    for cid, entry in entries.items():  # against everything else known, as pymatgen computes it
        others = reference_entries + [e for k, e in entries.items() if k != cid]
        _, e_hull = PhaseDiagram(others).get_decomp_and_e_above_hull(entry, allow_negative=True)
        assert results[cid].energy_above_hull == pytest.approx(e_hull, abs=1e-6)

    for name, target in (("fe-vasp", keys.FORMATION_ENERGY), ("hull-vasp", keys.ENERGY_ABOVE_HULL)):
        assert Campaign.objects.get(name=name).status == "completed"
        sent = Candidate.objects(campaign=name, selection__in=list(keys.SELECTIONS))
        assert sent.count() >= 2 and all(c.status == keys.STATUS_COMPUTED and c.fw_id for c in sent)
        assert all(len(c.task_ids) == 2 for c in sent)
        assert any(c.oracle[target] <= (-0.5 if target == keys.FORMATION_ENERGY else 0.1) for c in sent)  # hits
        assert ModelVersion.objects(config__campaign=name).count() == 1  # retrained and registered


def test_a_failed_step_fails_its_candidate_the_campaign_goes_on_and_a_rerun_recovers_it(fake_vasp_campaigns, db,
                                                                                        tmp_path):
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    from motif_screen.db.documents import Campaign, Candidate, OracleResult
    from motif_screen.handoff.atomate_wf import build_oracle_workflow
    from motif_screen.testing.fake_vasp import make_fake_vasp_refs

    run, lpad, refs_of = fake_vasp_campaigns
    run(campaign("fe-fail", keys.FORMATION_ENERGY, -0.5, budget=2), fizzle_steps={"-optimize_static-": ["static"]})
    assert Campaign.objects.get(name="fe-fail").status == "completed"  # the collector ran, the campaign went on
    sent = list(Candidate.objects(campaign="fe-fail", selection__in=list(keys.SELECTIONS)))
    assert len(sent) == 2
    for cand in sent:
        assert cand.status == keys.STATUS_FAILED and cand.status_reason.startswith(f"vasp: {cand.formula}-static")
        assert cand.fw_id is not None and len(cand.task_ids) == 1  # the relaxation's task document
    assert not list(lpad.fireworks.find({"state": {"$in": ["WAITING", "READY"]}}))

    # the static fixed (converged outputs this time) and re-run: computed, with the right value, once
    fixed = sent[0]
    name = next(n for n in refs_of if n.endswith(str(fixed.id)))
    clean = build_oracle_workflow(fixed.to_structure(), keys.FORMATION_ENERGY, candidate_id=str(fixed.id),
                                  campaign="fe-fail")
    make_fake_vasp_refs(clean, refs_of[name], energy_fn, band_gap_fn=lambda s: 2.0)
    static = lpad.fireworks.find_one({"name": f"{fixed.formula}-static",
                                      f"spec.{keys.TASKDOC_CANDIDATE_ID}": str(fixed.id)})
    before = OracleResult.objects(source="vasp").count()
    lpad.rerun_fw(static["fw_id"])
    rapidfire(lpad, FWorker(env={"db_file": db.db_file, "vasp_cmd": "vasp_std"}), strm_lvl="CRITICAL")
    fixed.reload()
    docs = sorted(db.db["tasks"].find({keys.TASKDOC_CANDIDATE_ID: str(fixed.id)}), key=lambda d: d["task_id"])
    assert [d["task_label"] for d in docs] == ["structure optimization", "static", "static"]  # failed, then fixed
    assert fixed.status == keys.STATUS_COMPUTED and sorted(fixed.task_ids) == sorted(str(d["task_id"]) for d in docs)
    assert OracleResult.objects.get(candidate=fixed.id).task_id == str(docs[-1]["task_id"])  # the re-run static
    expected = (energy_fn(fixed.to_structure()) / len(fixed.to_structure()))
    assert fixed.oracle["energy_per_atom"] == pytest.approx(expected)
    assert fixed.oracle[keys.FORMATION_ENERGY] is not None
    assert OracleResult.objects(source="vasp").count() == before  # updated in place, never duplicated
    assert Candidate.objects.get(id=sent[1].id).status == keys.STATUS_FAILED
