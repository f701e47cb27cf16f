"""Fixtures for the hand-off tests: a candidate waiting for its oracle, and a worker's FWorker."""

from __future__ import annotations

import pytest

from motif_screen import keys

ORIGIN = {"method": "perturb", "parents": ["mp-5229"], "model_version": 3, "round": 0}


@pytest.fixture
def submitted_candidate(db, perovskites):
    """SrTiO3 in campaign ``c1``, moved to ``submitted`` as SubmitToOracle leaves it."""
    from motif_screen.db.records import set_status, upsert_candidate

    cand, _ = upsert_candidate("c1", perovskites["SrTiO3"], origin=ORIGIN)
    set_status(cand.id, keys.STATUS_SCREENED)
    set_status(cand.id, keys.STATUS_SUBMITTED)
    return cand


@pytest.fixture
def fworker(config_dir):
    """The FWorker a worker gets from my_fworker.yaml: env with db_file and vasp_cmd."""
    from fireworks import FWorker

    return FWorker(name="test-worker", env={"db_file": str(config_dir / "db.json"), "vasp_cmd": "vasp_std"})


@pytest.fixture(autouse=True)
def _mongomock_gridfs():
    """FireWorks enables mongomock's GridFS only if it is first imported with the store configured;
    these tests import atomate (and so FireWorks) before any store exists (see DESIGN.md)."""
    import mongomock.gridfs

    mongomock.gridfs.enable_gridfs_integration()
