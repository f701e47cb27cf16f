"""Idempotent writes and the candidate life cycle."""

import math

import numpy as np
import pytest

from motif_screen import keys
from motif_screen.db.documents import Candidate, OracleResult
from motif_screen.db.records import record_oracle_result, set_predictions, set_status, upsert_candidate
from motif_screen.errors import InputError

ORIGIN = {"method": "perturb", "parents": ["mp-5229"], "model_version": 1, "round": 0}


def test_upsert_is_idempotent_per_campaign(db, perovskites):
    s = perovskites["SrTiO3"]
    first, created1 = upsert_candidate("c1", s, origin=ORIGIN, latent=[0.1, 0.2])
    again, created2 = upsert_candidate("c1", s, origin=ORIGIN, latent=[9.0, 9.0])
    other, created3 = upsert_candidate("c2", s, origin=ORIGIN)
    assert (created1, created2, created3) == (True, False, True)
    assert first.id == again.id and other.id != first.id
    assert Candidate.objects(campaign="c1").count() == 1
    assert again.latent == [0.1, 0.2]  # the first write wins; re-running changes nothing
    assert first.formula == "SrTiO3" and first.elements == ["O", "Sr", "Ti"] and first.nsites == 5
    assert first.status == keys.STATUS_PROPOSED and first.history[0].status == keys.STATUS_PROPOSED


def test_same_material_in_another_setting_is_the_same_candidate(db, perovskites):
    """Rotation, translation, permutation and a supercell do not make a new candidate."""
    s = perovskites["BaTiO3"]
    moved = s.copy()
    moved.translate_sites(list(range(len(moved))), [0.13, 0.27, 0.31])
    moved.apply_operation(__import__("pymatgen.core.operations", fromlist=["SymmOp"]).SymmOp.from_axis_angle_and_translation([1, 1, 0], 37.0))
    permuted = moved.copy()
    permuted.sort(key=lambda site: -site.specie.Z)
    supercell = s * (1, 1, 2)
    upsert_candidate("c", s, origin=ORIGIN)
    for variant in (moved, permuted, supercell):
        _, created = upsert_candidate("c", variant, origin=ORIGIN)
        assert not created
    assert Candidate.objects(campaign="c").count() == 1


def test_status_transitions_follow_the_life_cycle(db, perovskites):
    cand, _ = upsert_candidate("c", perovskites["CaTiO3"], origin=ORIGIN)
    set_status(cand.id, keys.STATUS_SCREENED)
    set_status(cand.id, keys.STATUS_SCREENED)  # repeating a move is a no-op
    with pytest.raises(InputError, match="cannot go from screened to computed"):
        set_status(cand.id, keys.STATUS_COMPUTED)
    with pytest.raises(InputError, match="unknown status"):
        set_status(cand.id, "done")
    doc = set_status(cand.id, keys.STATUS_SUBMITTED, fw_id=42)
    assert doc.fw_id == 42
    assert [h.status for h in doc.history] == ["proposed", "screened", "submitted"]


def test_oracle_result_upsert_links_and_updates_candidate(db, perovskites):
    cand, _ = upsert_candidate("c", perovskites["KNbO3"], origin=ORIGIN)
    set_status(cand.id, keys.STATUS_SCREENED)
    set_status(cand.id, keys.STATUS_SUBMITTED)
    for _ in range(2):
        res = record_oracle_result(cand.id, keys.SOURCE_CHGNET, run_status="successful", energy=-40.0,
                                   energy_per_atom=-8.0, formation_energy_per_atom=-2.1)
    assert OracleResult.objects(candidate=cand.id).count() == 1
    assert res.candidate.id == cand.id and res.campaign == "c" and not res.is_dft
    cand.reload()
    assert cand.status == keys.STATUS_COMPUTED
    assert cand.oracle == {"source": "chgnet", "energy": -40.0, "energy_per_atom": -8.0,
                           keys.FORMATION_ENERGY: -2.1}


def test_failed_oracle_marks_candidate_failed_with_reason(db, perovskites):
    cand, _ = upsert_candidate("c", perovskites["LaAlO3"], origin=ORIGIN)
    set_status(cand.id, keys.STATUS_SCREENED)
    set_status(cand.id, keys.STATUS_SUBMITTED)
    record_oracle_result(cand.id, keys.SOURCE_VASP, run_status="successful", energy=float("nan"))
    cand.reload()
    assert cand.status == keys.STATUS_FAILED
    assert "no finite value" in cand.status_reason and cand.status_reason.startswith("vasp:")


def test_non_finite_predictions_are_refused(db, perovskites):
    cand, _ = upsert_candidate("c", perovskites["SrTiO3"], origin=ORIGIN)
    with pytest.raises(InputError, match="not a finite number"):
        set_predictions(cand.id, {keys.BAND_GAP: (math.nan, 0.1)})
    set_predictions(cand.id, {keys.BAND_GAP: (np.float32(1.5), 0.2)}, acquisition=0.7)
    cand.reload()
    assert cand.predictions[keys.BAND_GAP].mean == pytest.approx(1.5) and cand.acquisition == pytest.approx(0.7)


def test_unknown_candidate_ids_are_clear_errors(db):
    with pytest.raises(InputError, match="is not a candidate id"):
        set_status("not-an-id", keys.STATUS_SCREENED)
    with pytest.raises(InputError, match="no candidate with id"):
        set_status("0123456789abcdef01234567", keys.STATUS_SCREENED)
