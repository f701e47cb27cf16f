"""connect(): embedded store sharing, locking, flushing; clear errors for every bad setup."""

import json
import os
import subprocess
import sys
import time

import pytest

from motif_screen.db import connect, embedded
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


def test_launchpad_atomate_and_documents_share_one_store(db, config_dir):
    """The LaunchPad's writes and ours land in the same file; nothing is lost on flush."""
    from fireworks import Firework, LaunchPad, ScriptTask

    from motif_screen.db import launchpad_for
    from motif_screen.db.documents import Campaign, Target

    lpad = launchpad_for(db, config_dir / "my_launchpad.yaml")
    assert isinstance(lpad, LaunchPad)
    lpad.add_wf(Firework(ScriptTask.from_str("echo hi"), name="probe"))
    Campaign(name="shared", target=Target(property="band_gap", goal="range", lower=1, upper=3), budget=2, rounds=1).save()
    import atomate.utils.database as atomate_db

    assert atomate_db.MongoClient is embedded.client_factory
    db.flush()
    content = json.loads((config_dir / "embedded_store.json").read_text())
    assert content["fireworks"]["fireworks"]["documents"][0][1]["name"] == "probe"
    assert content["motif_screen"]["ms_campaigns"]["documents"][0][1]["name"] == "shared"


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
    env = {k: v for k, v in os.environ.items() if k != embedded.STORE_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 3, out.stderr
    assert "in use by pid" in out.stdout and "cannot merge two writers" in out.stdout
    ro = code.replace("try:\n    connect(s.db_path, settings=s)\nexcept StoreLockedError as e:\n    print(e); sys.exit(3)\n", "")
    out = subprocess.run([sys.executable, "-c", ro], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "reader ok" in out.stdout, out.stderr


def test_readers_never_write_the_store(config_dir, clean_db_state):
    store = config_dir / "embedded_store.json"
    before = store.read_bytes()
    conn = connect(config_dir / "db.json", settings=settings_for(config_dir), readonly=True)
    conn.db["scratch"].insert_one({"x": 1})
    conn.flush()
    embedded.reset_for_tests()
    assert store.read_bytes() == before


def test_corrupt_store_file_is_a_clear_error(config_dir, clean_db_state):
    (config_dir / "embedded_store.json").write_text('{"motif_screen": {')
    with pytest.raises(DatabaseError, match="not valid JSON"):
        connect(config_dir / "db.json", settings=settings_for(config_dir))


def test_flush_is_atomic_and_leaves_no_temporaries(db, config_dir):
    db.db["probe"].insert_many([{"i": i} for i in range(100)])
    db.flush()
    files = sorted(p.name for p in config_dir.iterdir())
    assert not [f for f in files if f.endswith(".tmp")]
    assert len(json.loads((config_dir / "embedded_store.json").read_text())["motif_screen"]["probe"]["documents"]) == 100


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
