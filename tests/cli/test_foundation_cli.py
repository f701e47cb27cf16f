"""The CLI as users run it: init, lpad and motif-screen in separate processes on one embedded store."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from motif_screen.cli.main import main

BIN = Path(sys.executable).parent


def run_in(directory, *argv, timeout=180):
    env = {k: v for k, v in os.environ.items() if k not in ("MONGOMOCK_SERVERSTORE_FILE", "FW_CONFIG_FILE")}
    return subprocess.run(list(argv), cwd=directory, capture_output=True, text=True, env=env, timeout=timeout)


def test_help_explains_every_verb(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in ("init", "status", "query"):
        assert verb in out
    assert main(["query", "--help"]) == 0
    assert "LOW:HIGH" in capsys.readouterr().out


def test_init_is_idempotent_and_refuses_to_clobber(tmp_path, clean_db_state, capsys):
    assert main(["init", str(tmp_path)]) == 0
    files = {p.name: p.read_text() for p in tmp_path.iterdir() if p.suffix in (".yaml", ".json") and "store" not in p.name}
    assert set(files) == {"my_launchpad.yaml", "my_fworker.yaml", "db.json", "FW_config.yaml"}
    assert json.loads(files["db.json"])["embedded_store"].endswith("embedded_store.json")
    assert "db_file" in files["my_fworker.yaml"] and "vasp_cmd" in files["my_fworker.yaml"]
    from motif_screen.db import embedded

    embedded.close_all()
    assert main(["init", str(tmp_path)]) == 0  # same settings: kept
    embedded.close_all()
    assert main(["init", str(tmp_path), "--vasp-cmd", "srun vasp_std"]) == 2
    assert "use --force" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in tmp_path.iterdir() if p.name in files} == files  # nothing written


def test_init_with_unreachable_mongodb_writes_nothing(tmp_path, clean_db_state, capsys):
    target = tmp_path / "cfg"
    assert main(["init", str(target), "--mongodb-uri", "mongodb://u:topsecret@127.0.0.1:9/x"]) == 2
    err = capsys.readouterr().err
    assert "127.0.0.1:9" in err and "topsecret" not in err
    assert not target.exists()  # nothing written, not even the folder


def test_query_and_status_errors_exit_2(tmp_path, clean_db_state, capsys):
    assert main(["query", "--config-dir", str(tmp_path), "--band-gap", "3:1"]) == 2
    assert main(["query", "--config-dir", str(tmp_path)]) == 2  # no db.json there
    err = capsys.readouterr().err
    assert "lower bound is above" in err and "does not exist" in err
    assert main(["query", "--status", "done"]) == 2  # argparse choices


@pytest.mark.slow
def test_lpad_then_motif_screen_see_the_same_store(tmp_path):
    """`lpad add` in one process, our writes in another, then `motif-screen` and `lpad` see both."""
    assert run_in(tmp_path, str(BIN / "motif-screen"), "init", ".").returncode == 0
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "fws:\n- fw_id: 1\n  name: hello\n  spec:\n    _tasks:\n    - _fw_name: ScriptTask\n      script: echo hello\n"
        "links: {}\nmetadata: {}\nname: probe_wf\n"
    )
    added = run_in(tmp_path, str(BIN / "lpad"), "add", "wf.yaml")
    assert added.returncode == 0, added.stderr
    writer = (
        "from pymatgen.core import Lattice, Structure\n"
        "from motif_screen.db import connect\n"
        "from motif_screen.db.records import upsert_candidate, set_predictions\n"
        "conn = connect('db.json')\n"
        "s = Structure(Lattice.cubic(3.9), ['Sr','Ti','O','O','O'], [[0,0,0],[.5,.5,.5],[.5,.5,0],[.5,0,.5],[0,.5,.5]])\n"
        "doc, _ = upsert_candidate('demo', s, origin={'method': 'prior', 'round': 0})\n"
        "set_predictions(doc.id, {'band_gap': (1.7, 0.2)}, acquisition=0.5)\n"
        "conn.flush()\n"
    )
    wrote = run_in(tmp_path, sys.executable, "-c", writer)
    assert wrote.returncode == 0, wrote.stderr
    q = run_in(tmp_path, str(BIN / "motif-screen"), "query", "--campaign", "demo", "--band-gap", "1:2", "--format", "json")
    assert q.returncode == 0, q.stderr
    rows = json.loads(q.stdout)
    assert [r["formula"] for r in rows] == ["SrTiO3"] and rows[0]["pred_band_gap"] == pytest.approx(1.7)
    st = run_in(tmp_path, str(BIN / "motif-screen"), "status", "--json")
    assert st.returncode == 0, st.stderr
    status = json.loads(st.stdout)
    assert status["fireworks"] == {"READY": 1}
    assert status["campaigns"]["demo"]["candidates"]["proposed"] == 1
    fws = run_in(tmp_path, str(BIN / "lpad"), "get_fws", "-d", "ids")
    assert fws.returncode == 0 and "1" in fws.stdout
    cif = run_in(tmp_path, str(BIN / "motif-screen"), "query", "--format", "cif", "--out", "hits")
    assert cif.returncode == 0, cif.stderr
    assert len(list((tmp_path / "hits").glob("*.cif"))) == 1 and (tmp_path / "hits" / "index.csv").exists()
