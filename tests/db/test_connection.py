"""connect(): embedded store sharing, locking, flushing; clear errors for every bad setup."""

import json
import os
import subprocess
import sys
import time

import pytest

from motif_screen.db import connect, embedded
from motif_screen.db.connection import LEGACY_STORE_ENV
from motif_screen.errors import ConfigError, DatabaseError
from motif_screen.settings import Settings


def settings_for(path, **kw):
    return Settings(config_dir=path, connect_timeout_ms=kw.pop("timeout", 800), **kw)


def test_missing_and_malformed_db_file(tmp_path, clean_db_state):
    with pytest.raises(ConfigError, match="does not exist"):
        connect(tmp_path / "db.json", settings=settings_for(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        connect(bad, settings=settings_for(tmp_path))
    bad.write_text(json.dumps({"database": "x"}))
    with pytest.raises(ConfigError, match="names no `host`"):
        connect(bad, settings=settings_for(tmp_path))


def test_unreachable_mongodb_fails_fast_naming_host_without_credentials(tmp_path, clean_db_state):
    db_file = tmp_path / "db.json"
    db_file.write_text(json.dumps({"host": "127.0.0.1", "port": 9, "database": "d", "collection": "tasks",
                                   "admin_user": "alice", "admin_password": "s3cr3t-pw"}))
    start = time.monotonic()
    with pytest.raises(DatabaseError) as err:
        connect(db_file, settings=settings_for(tmp_path))
    assert time.monotonic() - start < 5
    assert "127.0.0.1:9" in str(err.value) and "s3cr3t-pw" not in str(err.value) and "alice" not in str(err.value)
    with pytest.raises(DatabaseError) as err:
        connect(uri="mongodb://bob:hunter2@127.0.0.1:9/db", settings=settings_for(tmp_path))
    assert "127.0.0.1:9" in str(err.value) and "hunter2" not in str(err.value)


def test_malformed_uri_is_a_config_error_without_the_secret(tmp_path, clean_db_state):
    with pytest.raises(ConfigError) as err:
        connect(uri="mongodb://bob:hunter2@:::bad", settings=settings_for(tmp_path))
    assert "hunter2" not in str(err.value)


def stored(config_dir, db_name, coll):
    content = json.loads((config_dir / "embedded_store.json").read_text())
    return content["databases"][db_name][coll]["documents"]


def test_launchpad_atomate_and_documents_share_one_store(config_dir, clean_db_state):
    """The LaunchPad's writes, atomate's and ours land in one store; nothing is lost on flush."""
    import atomate.utils.database as atomate_db
    from fireworks import Firework, LaunchPad, ScriptTask

    from motif_screen.db import launchpad_for
    from motif_screen.db.documents import Campaign

    db = connect(config_dir / "db.json", settings=settings_for(config_dir))
    lpad = launchpad_for(db, config_dir / "my_launchpad.yaml")
    assert isinstance(lpad, LaunchPad)
    lpad.add_wf(Firework(ScriptTask.from_str("echo hi"), name="probe"))
    Campaign(name="shared", target={"property": "band_gap", "goal": "range", "lower": 1, "upper": 3}, budget=2, rounds=1).save()
    assert isinstance(atomate_db.MongoClient, embedded.FireWorksClient)
    atomate_client = atomate_db.MongoClient(host="localhost", port=27017)
    assert atomate_client is db.client is lpad.connection
    db.flush()
    assert stored(config_dir, "fireworks", "fireworks")[0]["name"] == "probe"
    assert stored(config_dir, "motif_screen", "ms_campaigns")[0]["name"] == "shared"


def test_second_writer_process_gets_a_clear_error(db, config_dir):
    code = (
        "import sys\n"
        "from motif_screen.db import connect\n"
        "from motif_screen.settings import Settings\n"
        "from motif_screen.errors import StoreLockedError\n"
        f"s = Settings(config_dir={str(config_dir)!r})\n"
        "try:\n    connect(s.db_path, settings=s)\nexcept StoreLockedError as e:\n    print(e); sys.exit(3)\n"
        "connect(s.db_path, settings=s, readonly=True); print('reader ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != LEGACY_STORE_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 3, out.stderr
    assert f"in use by pid {os.getpid()}" in out.stdout and "only one process" in out.stdout
    ro = code.replace("try:\n    connect(s.db_path, settings=s)\nexcept StoreLockedError as e:\n    print(e); sys.exit(3)\n", "")
    out = subprocess.run([sys.executable, "-c", ro], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "reader ok" in out.stdout, out.stderr


def test_readers_never_write_the_store(config_dir, clean_db_state):
    store = config_dir / "embedded_store.json"
    before = store.read_bytes()
    conn = connect(config_dir / "db.json", settings=settings_for(config_dir), readonly=True)
    conn.db["scratch"].insert_one({"x": 1})
    conn.flush()
    embedded.close_all()
    assert store.read_bytes() == before


def test_an_unchanged_store_is_not_rewritten(config_dir, clean_db_state):
    store = config_dir / "embedded_store.json"
    stamp = store.stat().st_mtime_ns
    conn = connect(config_dir / "db.json", settings=settings_for(config_dir))
    assert conn.db["fireworks"].count_documents({}) == 0
    conn.flush()
    embedded.close_all()
    assert store.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("damage", ['{"motif_screen": {', "", "\x00\x01binary"])
def test_corrupt_or_empty_store_is_reported_and_restored_from_the_backup(config_dir, clean_db_state, damage, capsys):
    from motif_screen.cli.main import main

    conn = connect(config_dir / "db.json", settings=settings_for(config_dir))
    conn.db["probe"].insert_one({"kept": 1})
    conn.flush()  # previous version -> .bak
    conn.db["probe"].insert_one({"kept": 2})
    conn.flush()
    embedded.close_all()
    store = config_dir / "embedded_store.json"
    store.write_text(damage)
    with pytest.raises(DatabaseError, match="restore-backup") as err:
        connect(config_dir / "db.json", settings=settings_for(config_dir))
    assert ("empty" if not damage else "not valid JSON") in str(err.value)
    assert main(["status", "--config-dir", str(config_dir)]) == 2
    assert "restore-backup" in capsys.readouterr().err
    assert main(["status", "--config-dir", str(config_dir), "--restore-backup"]) == 0
    assert "restored" in capsys.readouterr().out
    assert [p.name for p in config_dir.glob("embedded_store.json.broken-*")]  # the damaged file is kept aside
    restored = connect(config_dir / "db.json", settings=settings_for(config_dir), readonly=True)
    assert [d["kept"] for d in restored.db["probe"].find()] == [1]


def test_flush_is_atomic_keeps_a_backup_and_leaves_no_temporaries(db, config_dir):
    db.db["probe"].insert_many([{"i": i} for i in range(100)])
    db.flush()
    db.db["probe"].insert_one({"i": 100})
    db.flush()
    files = sorted(p.name for p in config_dir.iterdir())
    assert not [f for f in files if f.endswith(".tmp")]
    assert len(stored(config_dir, "motif_screen", "probe")) == 101
    backup = json.loads((config_dir / "embedded_store.json.bak").read_text())
    assert len(backup["databases"]["motif_screen"]["probe"]["documents"]) == 100


def test_unique_indexes_survive_a_round_trip_through_the_file(db, config_dir):
    from pymongo.errors import DuplicateKeyError

    from motif_screen.db.documents import ModelVersion

    ModelVersion(name="m", version=1).save()
    db.flush()
    embedded.close_all()
    again = connect(config_dir / "db.json", settings=settings_for(config_dir))
    raw = again.db["ms_model_versions"]  # the raw collection: mongoengine has not re-created anything
    assert any(info.get("unique") for info in raw.index_information().values())
    with pytest.raises(DuplicateKeyError):
        raw.insert_one({"name": "m", "version": 1})


def test_a_store_written_by_motif_screen_0_1_is_read_and_upgraded(tmp_path, clean_db_state):
    """mongomock-persistence's layout ({db: {coll: {name, documents: [[id, doc]]}}}) is migrated on open."""
    from motif_screen.cli.init import initialise

    legacy = {"motif_screen": {"ms_campaigns": {"name": "ms_campaigns", "documents": [
        ["abc", {"_id": "abc", "name": "old"}]]}}}
    (tmp_path / "embedded_store.json").write_text(json.dumps(legacy))
    (tmp_path / "db.json").write_text(json.dumps({"host": "localhost", "port": 27017, "database": "motif_screen",
                                                  "collection": "tasks",
                                                  "mongomock_serverstore_file": str(tmp_path / "embedded_store.json")}))
    with pytest.raises(ConfigError, match="run `motif-screen init"):
        connect(tmp_path / "db.json", settings=settings_for(tmp_path))
    lines = initialise(tmp_path)
    assert any("upgraded" in line for line in lines)
    embedded.close_all()
    conn = connect(tmp_path / "db.json", settings=settings_for(tmp_path), readonly=True)
    assert conn.db["ms_campaigns"].find_one({})["name"] == "old"


def test_fireworks_own_mongomock_switch_is_refused(config_dir, clean_db_state, monkeypatch):
    monkeypatch.setenv(LEGACY_STORE_ENV, str(config_dir / "embedded_store.json"))
    with pytest.raises(ConfigError, match="MONGOMOCK_SERVERSTORE_FILE is set"):
        connect(config_dir / "db.json", settings=settings_for(config_dir))


def test_mongomock_persistence_cannot_overwrite_the_new_format(config_dir, clean_db_state):
    """A stale FireWorks configured the old way fails to load the file instead of rewriting it."""
    pytest.importorskip("mongomock_persistence", reason="only a machine with fireworks[mongomock] installed has it")
    store = config_dir / "embedded_store.json"
    before = store.read_bytes()
    code = "import mongomock_persistence\nmongomock_persistence.MongoClient()\n"
    env = {**os.environ, LEGACY_STORE_ENV: str(store)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0
    assert store.read_bytes() == before


@pytest.mark.mongodb
def test_real_mongodb_round_trip(clean_db_state, tmp_path, perovskites):
    from motif_screen.db.records import upsert_candidate

    uri = os.environ["MOTIF_SCREEN_TEST_MONGODB_URI"]
    conn = connect(uri=uri, database="motif_screen_test", settings=settings_for(tmp_path, timeout=5000))
    try:
        _, created = upsert_candidate("t", perovskites["SrTiO3"], origin={"method": "prior"})
        _, again = upsert_candidate("t", perovskites["SrTiO3"], origin={"method": "prior"})
        assert not again
    finally:
        conn.client.drop_database("motif_screen_test")


def test_the_embedded_store_runs_on_the_mongomock_release_it_is_pinned_to():
    """pyproject pins mongomock to the release these tests exercise; a different one fails here first."""
    import importlib.metadata
    import tomllib
    from pathlib import Path

    import mongomock

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("mongomock"))
    assert pin.startswith("mongomock==4.3.")
    assert importlib.metadata.version("mongomock").startswith("4.3.") and mongomock.__version__.startswith("4.3.")
    assert not any(d.startswith("fireworks[mongomock]") for d in pyproject["project"]["dependencies"])
