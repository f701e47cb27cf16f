"""FireWorks' own tools on the embedded store: every process takes the same lock and writes atomically,
or is refused with one message; a campaign never ends with less than it made. Credentials stay private.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from motif_screen.cli.main import main

BIN = Path(sys.executable).parent
SMALL = ["--candidates", "30", "--budget", "4", "--rounds", "2", "--chgnet-steps", "10", "--no-report"]
WORKFLOW = ("fws:\n- fw_id: 1\n  name: hello\n  spec:\n    _tasks:\n    - _fw_name: ScriptTask\n      script: echo hello\n"
            "links: {}\nmetadata: {}\nname: probe_wf\n")
STALE_CLIENT = ("import sys, time\nfrom fireworks import LaunchPad\nlp = LaunchPad.auto_load()\n"
                "print('holding', flush=True)\ntime.sleep(float(sys.argv[1]))\n")


def env():
    out = {k: v for k, v in os.environ.items() if k not in ("MONGOMOCK_SERVERSTORE_FILE", "FW_CONFIG_FILE")}
    out["MOTIF_SCREEN_PROGRESS"] = "false"
    return out


def run_in(directory, *argv, timeout=900):
    return subprocess.run(list(argv), cwd=directory, capture_output=True, text=True, env=env(), timeout=timeout)


def counts(directory):
    content = json.loads((Path(directory) / "embedded_store.json").read_text())["databases"]
    ours = content.get("motif_screen", {})
    return {name: len(ours.get(coll, {}).get("documents", []))
            for name, coll in (("candidates", "ms_candidates"), ("oracle", "ms_oracle_results"),
                               ("models", "ms_model_versions"), ("rounds", "ms_rounds"))} | {
        "workflows": len(content.get("fireworks", {}).get("workflows", {}).get("documents", []))}


def test_lpad_reads_and_writes_through_the_same_lock_and_never_rewrites_an_unchanged_store(tmp_path):
    assert run_in(tmp_path, str(BIN / "motif-screen"), "init", ".").returncode == 0
    store = tmp_path / "embedded_store.json"
    stamp = store.stat().st_mtime_ns
    read = run_in(tmp_path, str(BIN / "lpad"), "get_wflows", "-d", "count")
    assert read.returncode == 0 and read.stdout.strip() == "0", read.stderr
    assert store.stat().st_mtime_ns == stamp  # a read-only command leaves the file alone
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    added = run_in(tmp_path, str(BIN / "lpad"), "add", "wf.yaml")
    assert added.returncode == 0, added.stderr
    assert counts(tmp_path)["workflows"] == 1  # written, atomically, with the previous version kept
    assert json.loads((tmp_path / "embedded_store.json.bak").read_text())["format"] == "motif_screen.embedded_store"


@pytest.mark.slow
def test_fireworks_tools_during_a_campaign_are_refused_and_the_campaign_keeps_everything(tmp_path):
    """`lpad get_wflows`, `lpad add` and a LaunchPad client while `motif-screen run` holds the store."""
    assert run_in(tmp_path, str(BIN / "motif-screen"), "init", ".").returncode == 0
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    proc = subprocess.Popen([str(BIN / "motif-screen"), "run", *SMALL], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(tmp_path.glob("launches/launcher_*")):
        time.sleep(0.2)  # a rocket has launched: the run holds the store
    assert proc.poll() is None, "the campaign ended before the probes could run"
    refused = []
    for argv in ([str(BIN / "lpad"), "get_wflows", "-d", "count"], [str(BIN / "lpad"), "add", "wf.yaml"],
                 [sys.executable, "-c", STALE_CLIENT, "0"]):
        out = run_in(tmp_path, *argv)
        refused.append((argv[1], out.returncode, out.stdout + out.stderr))
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-3000:]
    for what, code, text in refused:
        assert code != 0, what
        assert "is in use by pid" in text and "Traceback" not in text, (what, text)
        assert "Added a workflow" not in text
    final = counts(tmp_path)
    assert final["workflows"] == 1 and final["rounds"] == 2 and final["oracle"] >= 4 and final["models"] >= 2
    assert run_in(tmp_path, str(BIN / "motif-screen"), "status").returncode == 0


@pytest.mark.slow
def test_a_stale_launchpad_client_blocks_a_run_with_a_message_and_loses_nothing(tmp_path):
    assert run_in(tmp_path, str(BIN / "motif-screen"), "init", ".").returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", STALE_CLIENT, "8"], cwd=tmp_path, env=env(),
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    blocked = run_in(tmp_path, str(BIN / "motif-screen"), "run", *SMALL)
    assert blocked.returncode == 2 and "is in use by pid" in blocked.stderr and "Traceback" not in blocked.stderr
    holder.wait(timeout=60)
    done = run_in(tmp_path, str(BIN / "motif-screen"), "run", *SMALL)
    assert done.returncode == 0, done.stderr[-3000:]
    final = counts(tmp_path)
    assert final["rounds"] == 2 and final["oracle"] >= 4


def test_a_lock_path_that_is_a_folder_is_one_message(config_dir, capsys):
    (config_dir / "embedded_store.json.lock").unlink(missing_ok=True)
    (config_dir / "embedded_store.json.lock").mkdir()
    assert main(["status", "--config-dir", str(config_dir)]) == 0  # readers take no lock
    assert main(["run", "--config-dir", str(config_dir), "--budget", "1", "--rounds", "1"]) == 2
    err = capsys.readouterr().err
    assert "lock file" in err and "Traceback" not in err


def test_credentials_are_written_for_the_owner_only(tmp_path, clean_db_state, monkeypatch):
    from motif_screen.cli import init

    monkeypatch.setattr(init.connection, "real_client", lambda *a, **k: None)  # no server here
    monkeypatch.setattr(init, "_prepare_launchpad", lambda directory: [])
    init.initialise(tmp_path / "cfg", mongodb_uri="mongodb://alice:s3cret@db.example.org:27017/disc")
    for name in ("db.json", "my_launchpad.yaml"):
        path = tmp_path / "cfg" / name
        assert "s3cret" in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "cfg" / "my_fworker.yaml").stat().st_mode) & 0o077 in (0o044, 0o004, 0o040, 0)


def test_init_checks_before_writing_and_leaves_no_empty_folder(tmp_path, clean_db_state, capsys):
    target = tmp_path / "new"
    assert main(["init", str(target), "--mongodb-uri", "mongodb://u:pw@@:::"]) == 2
    assert "pw" not in capsys.readouterr().err and not target.exists()
    assert main(["init", str(target), "--queue", "slurm"]) == 2  # a queue needs a server
    assert not target.exists()
    assert main(["init", str(tmp_path / "ok")]) == 0
    store = tmp_path / "ok" / "embedded_store.json"
    store.write_text("{garbage")
    before = {p.name: p.read_bytes() for p in (tmp_path / "ok").iterdir() if p.is_file()}
    assert main(["init", str(tmp_path / "ok"), "--force", "--vasp-cmd", "srun vasp_std"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "ok").iterdir() if p.is_file()} == before


def test_init_queue_writes_a_qadapter_that_qlaunch_reads(tmp_path, clean_db_state, monkeypatch):
    from fireworks.queue.queue_adapter import QueueAdapterBase
    from fireworks.utilities.fw_serializers import load_object_from_file

    from motif_screen.cli import init

    monkeypatch.setattr(init.connection, "real_client", lambda *a, **k: None)
    monkeypatch.setattr(init, "_prepare_launchpad", lambda directory: [])
    init.initialise(tmp_path, mongodb_uri="mongodb://db.example.org/disc", queue="slurm", vasp_cmd="srun vasp_std")
    adapter = load_object_from_file(str(tmp_path / "my_qadapter.yaml"))
    assert isinstance(adapter, QueueAdapterBase) and adapter.q_type == "SLURM"
    assert adapter["rocket_launch"] == f"rlaunch -c {tmp_path} singleshot"
    script = adapter.get_script_str(str(tmp_path))
    assert "#SBATCH" in script and "rlaunch" in script
    assert "QUEUEADAPTER_LOC" in (tmp_path / "FW_config.yaml").read_text()
    assert "srun vasp_std" in (tmp_path / "my_fworker.yaml").read_text()
