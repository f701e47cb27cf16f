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


def test_stability_is_screened_against_the_known_chgnet_hull(db):
    """A predicted formation energy becomes a predicted distance to the hull of what is known:
    at SrTiO3's composition, the SrO–TiO2 tie line of the shipped CHGNet references."""
    import pytest
    from pymatgen.core import Composition

    from motif_screen.campaign.thermo import known_hull
    from motif_screen.db.repository import Repository
    from motif_screen.oracles.stability import formation_energy_per_atom

    repo = Repository(db)
    hull = known_hull(repo, keys.SOURCE_CHGNET)
    by_formula = {e.composition.reduced_formula: e for e in hull.entries}
    elements = [e for e in hull.entries if len(e.composition.elements) == 1]
    e_sro = formation_energy_per_atom(by_formula["SrO"], elements)[0]
    e_tio2 = formation_energy_per_atom(by_formula["TiO2"], elements)[0]
    tie_line = (2 * e_sro + 3 * e_tio2) / 5  # SrO + TiO2 -> SrTiO3, per atom of SrTiO3
    sto, unknown = hull.formation_energies([Composition("SrTiO3"), Composition("UO2")])
    assert tie_line - 0.05 <= sto <= tie_line + 1e-9  # on (or just below, through another binary) the tie line
    assert sto < -3.0 and unknown == 0.0  # no uranium reference: measured against the elements only


def test_acquisition_against_random_with_intervals_and_a_plain_verdict(db, perovskites):
    from motif_screen.campaign.report import acquisition_vs_random, summary_text, wilson_interval
    from motif_screen.campaign.spec import parse_spec
    from motif_screen.db.records import record_oracle_result, set_status, upsert_candidate
    from motif_screen.db.repository import Repository

    spec = parse_spec({"name": "ab", "budget": 40, "rounds": 1,
                       "target": {"property": keys.FORMATION_ENERGY, "goal": "minimize", "upper": -2.0}})
    structures = [perovskites["SrTiO3"].copy() for _ in range(24)]
    for k, s in enumerate(structures):
        s.scale_lattice(s.volume * (1 + 0.05 * k))  # 24 different cells (fingerprints differ)
        cand, _ = upsert_candidate("ab", s, origin={"method": "prior", "round": 0})
        control = k >= 12
        set_status(cand.id, keys.STATUS_SCREENED,
                   selection=keys.SELECTED_AS_CONTROL if control else keys.SELECTED_BY_ACQUISITION)
        set_status(cand.id, keys.STATUS_SUBMITTED)
        hit = (k % 12) < (3 if control else 9)  # 9/12 acquisition hits, 3/12 control hits
        record_oracle_result(cand.id, keys.SOURCE_CHGNET, run_status="successful", energy=-40.0,
                             energy_per_atom=-8.0, formation_energy_per_atom=-3.0 if hit else -1.0)
    stats = acquisition_vs_random(Repository(db), spec)
    assert (stats["acquisition_hits"], stats["acquisition_calls"], stats["random_hits"], stats["random_calls"]) == (
        9, 12, 3, 12)
    assert stats["acceleration"] == 3.0
    low, high = stats["acceleration_interval"]
    assert 1.0 < low < 3.0 < high  # 9/12 against 3/12 is a measured difference, with a wide interval
    assert stats["acquisition_rate_interval"] == wilson_interval(9, 12)
    assert "acquisition beats random picks" in summary_text(stats, spec)
    assert "prototype" not in summary_text(stats, spec, Repository(db).cell_prototype_counts(spec.name))  # none stored
    counted = summary_text(stats, spec, {"perovskite": 3, "perovskite_inverted": 1, "abx3_other": 2})
    assert "by prototype: perovskite 3, perovskite_inverted 1, abx3_other 2" in counted
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    strict = acquisition_vs_random(Repository(db), spec, is_hit=lambda value: value <= -5.0)
    assert (strict["acquisition_hits"], strict["random_hits"], strict["acquisition_calls"]) == (0, 0, 12)

    # a failed calculation is an oracle call that found nothing; a value not yet known is not counted yet
    for k, outcome in enumerate(("failed", "awaiting")):
        s = perovskites["SrTiO3"].copy()
        s.scale_lattice(s.volume * (3 + 0.1 * k))
        cand, _ = upsert_candidate("ab", s, origin={"method": "prior", "round": 0})
        set_status(cand.id, keys.STATUS_SCREENED, selection=keys.SELECTED_BY_ACQUISITION)
        set_status(cand.id, keys.STATUS_SUBMITTED)
        if outcome == "failed":
            record_oracle_result(cand.id, keys.SOURCE_CHGNET, run_status="failed", errors=["atoms fused"])
        else:
            record_oracle_result(cand.id, keys.SOURCE_CHGNET, run_status="successful", energy=-40.0,
                                 energy_per_atom=-8.0, awaiting_references=["Sr"])
    stats = acquisition_vs_random(Repository(db), spec)
    assert (stats["acquisition_hits"], stats["acquisition_calls"]) == (9, 13)
