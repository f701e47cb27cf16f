"""Shared fixtures: an embedded store set up exactly as `motif-screen init` does it."""

from __future__ import annotations

import os

import pytest

MONGODB_URI_ENV = "MOTIF_SCREEN_TEST_MONGODB_URI"
LEGACY_STORE_ENV = "MONGOMOCK_SERVERSTORE_FILE"  # FireWorks' own switch; never set around our store


def pytest_collection_modifyitems(config, items):
    if os.environ.get(MONGODB_URI_ENV):
        return
    skip = pytest.mark.skip(reason=f"needs a real MongoDB: set {MONGODB_URI_ENV}")
    for item in items:
        if "mongodb" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def clean_db_state(monkeypatch):
    """Each test starts with no open store, no lock, no mongoengine connection."""
    from mongoengine.connection import disconnect_all

    from motif_screen.db import embedded
    from motif_screen.settings import get_settings

    monkeypatch.delenv(LEGACY_STORE_ENV, raising=False)
    embedded.close_all()
    get_settings.cache_clear()
    yield
    embedded.close_all()
    disconnect_all()
    get_settings.cache_clear()
    os.environ.pop(LEGACY_STORE_ENV, None)


@pytest.fixture
def config_dir(tmp_path, clean_db_state):
    """A folder initialised by `motif-screen init` (embedded store), then released by this process."""
    from motif_screen.cli.init import initialise
    from motif_screen.db import embedded

    initialise(tmp_path)
    embedded.close_all()
    os.environ.pop(LEGACY_STORE_ENV, None)
    return tmp_path


@pytest.fixture
def db(config_dir):
    """A writable connection to a fresh embedded store."""
    from motif_screen.db import connect
    from motif_screen.settings import Settings

    settings = Settings(config_dir=config_dir)
    return connect(settings.db_path, settings=settings)


@pytest.fixture(scope="session")
def perovskites():
    """A few cubic ABO3 perovskites built with pymatgen (no external data)."""
    from pymatgen.core import Lattice, Structure

    def cubic(a_el, b_el, x_el="O", a=3.9):
        return Structure(
            Lattice.cubic(a),
            [a_el, b_el, x_el, x_el, x_el],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        )

    return {
        "SrTiO3": cubic("Sr", "Ti", a=3.905),
        "BaTiO3": cubic("Ba", "Ti", a=4.0),
        "CaTiO3": cubic("Ca", "Ti", a=3.84),
        "KNbO3": cubic("K", "Nb", a=4.0),
        "LaAlO3": cubic("La", "Al", a=3.79),
    }
