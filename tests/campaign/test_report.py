"""The run report writes only inside its folder, whatever the database holds."""

from __future__ import annotations

import os

from motif_screen import keys


def test_a_hostile_stored_formula_and_a_planted_link_stay_inside_the_report(db, perovskites, tmp_path):
    from motif_screen.campaign.report import write_report
    from motif_screen.campaign.spec import parse_spec
    from motif_screen.db.documents import Candidate
    from motif_screen.db.records import record_oracle_result, set_status, upsert_candidate
    from motif_screen.db.repository import Repository

    spec = parse_spec({"name": "evil", "budget": 1, "rounds": 1,
                       "target": {"property": keys.FORMATION_ENERGY, "goal": "minimize", "upper": -1.0}})
    cand, _ = upsert_candidate("evil", perovskites["SrTiO3"], origin={"method": "prior", "round": 0})
    set_status(cand.id, keys.STATUS_SCREENED, selection=keys.SELECTED_BY_ACQUISITION)
    set_status(cand.id, keys.STATUS_SUBMITTED)
    record_oracle_result(cand.id, keys.SOURCE_CHGNET, run_status="successful", energy=-40.0, energy_per_atom=-8.0,
                         formation_energy_per_atom=-3.0)
    Candidate.objects(id=cand.id).update_one(set__formula="/../../../../escaped")  # anyone with write access can
    area = tmp_path / "area"  # everything the report may touch, and a victim beside it
    report = area / "deep" / "report"
    report.mkdir(parents=True)
    victim = area / "victim.csv"
    victim.write_text("keep me")
    os.symlink(victim, report / "hits.csv")  # a planted link where the report writes its table

    files = write_report(Repository(db), spec, report)
    assert victim.read_text() == "keep me" and not (report / "hits.csv").is_symlink()
    written = sorted(p.relative_to(report).as_posix() for p in report.rglob("*") if p.is_file())
    assert "hits.csv" in written and any(w.startswith("hits/") and w.endswith(".cif") for w in written)
    outside = [p for p in area.rglob("*") if p.is_file() and p != victim
               and not p.resolve().is_relative_to(report.resolve())]
    assert outside == []
    assert {f.name for f in files} >= {"funnel.png", "parity.png", "latent_map.png", "hits.csv"}
