"""Whole campaigns as users run them: `motif-screen run`, and `lpad add` + `rlaunch` in subprocesses.

Small counts (tens of candidates, a handful of CHGNet relaxations of a few steps) keep these to a
minute or two; the code path is the one the demo and HPC users run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from motif_screen import keys

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow
SMALL = ["--candidates", "40", "--budget", "8", "--rounds", "2", "--chgnet-steps", "5", "--hit-below", "0.0"]


def run_cli(directory, *argv, timeout=900):
    env = {k: v for k, v in os.environ.items() if k not in ("MONGOMOCK_SERVERSTORE_FILE", "FW_CONFIG_FILE")}
    env["MOTIF_SCREEN_PROGRESS"] = "false"
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=directory, capture_output=True, text=True,
                          env=env, timeout=timeout)


def open_db(directory):
    from motif_screen.db import connect, embedded
    from motif_screen.settings import Settings

    embedded.close_all()
    return connect(Path(directory) / "db.json", settings=Settings(config_dir=directory), readonly=True)


def database_counts(campaign):
    from motif_screen.db.documents import Candidate, ModelVersion, OracleResult

    return {"candidates": Candidate.objects(campaign=campaign).count(),
            "oracle": OracleResult.objects(campaign=campaign).count(),
            "models": ModelVersion.objects.count()}


def assert_consistent_campaign(campaign):
    """Every candidate's history is a legal path ending in its status; oracle results are linked."""
    from motif_screen.db.documents import Candidate, OracleResult

    docs = list(Candidate.objects(campaign=campaign))
    assert docs
    for d in docs:
        path = [h.status for h in d.history]
        assert path[0] == keys.STATUS_PROPOSED and path[-1] == d.status, (d.id, path, d.status)
        for a, b in zip(path, path[1:]):
            assert b in keys.STATUS_TRANSITIONS[a], (d.id, path)
        if d.status == keys.STATUS_REJECTED:
            assert d.status_reason
        if d.status in (keys.STATUS_COMPUTED, keys.STATUS_FAILED):
            res = OracleResult.objects(candidate=d.id).first()
            assert res is not None and res.source == keys.SOURCE_CHGNET and not res.is_dft
            assert (res.run_status == "successful") == (d.status == keys.STATUS_COMPUTED)
            assert d.selection in keys.SELECTIONS
    sent = [d for d in docs if d.status in (keys.STATUS_SUBMITTED, keys.STATUS_COMPUTED, keys.STATUS_FAILED)]
    assert not [d for d in sent if d.status == keys.STATUS_SUBMITTED], "a submitted candidate was never collected"
    assert OracleResult.objects(campaign=campaign).count() == len(sent)


def test_motif_screen_run_whole_campaign_and_resume(tmp_path):
    assert run_cli(tmp_path, "motif-screen", "init", ".").returncode == 0
    out = run_cli(tmp_path, "motif-screen", "run", *SMALL)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "round" in out.stdout and "report:" in out.stdout
    for name in ("funnel.png", "parity.png", "latent_map.png", "hits.csv"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert "decoded A B X3 cells (valid candidates) by prototype: perovskite" in (tmp_path / "report" / "summary.txt").read_text()
    open_db(tmp_path)
    from motif_screen.db.documents import Campaign, ModelVersion, RoundRecord

    campaign = "demo-perovskites"
    assert_consistent_campaign(campaign)
    assert Campaign.objects.get(name=campaign).status == "completed"
    rounds = list(RoundRecord.objects(campaign=campaign).order_by("round"))
    assert [r.round for r in rounds] == [0, 1]
    for r in rounds:
        assert r.generated == 40 and r.generated >= r.valid >= r.unique >= r.novel >= r.screened
        assert r.submitted >= 1
    assert ModelVersion.objects(name="perov5", promoted=True).count() == 1
    assert ModelVersion.objects(name="perov5").count() >= 2  # shipped v1 + the retrained one
    before = database_counts(campaign)

    again = run_cli(tmp_path, "motif-screen", "run", *SMALL)  # resume a finished campaign: nothing new
    assert again.returncode == 0, again.stderr[-3000:]
    open_db(tmp_path)
    assert database_counts(campaign) == before


def test_second_run_while_one_runs_is_refused(tmp_path):
    assert run_cli(tmp_path, "motif-screen", "init", ".").returncode == 0
    from motif_screen.db import embedded

    lock = embedded.StoreLock(tmp_path / "embedded_store.json")
    lock.acquire()
    try:
        out = run_cli(tmp_path, "motif-screen", "run", *SMALL)
    finally:
        lock.release()
    assert out.returncode == 2 and "in use by" in out.stderr and "Traceback" not in out.stderr


def test_lpad_add_rlaunch_query_rerun(tmp_path):
    """The HPC path on the embedded store: workflow file -> lpad add -> rlaunch -> query; reruns are safe."""
    assert run_cli(tmp_path, "motif-screen", "init", ".").returncode == 0
    made = run_cli(tmp_path, "motif-screen", "workflow", "create", "-o", "wf.yaml", "--campaign", "hpc", "--oracle",
                   "chgnet", *SMALL)
    assert made.returncode == 0, made.stderr
    assert run_cli(tmp_path, "lpad", "add", "wf.yaml").returncode == 0
    launched = run_cli(tmp_path, "rlaunch", "rapidfire")
    assert launched.returncode == 0, launched.stderr[-3000:]

    q = run_cli(tmp_path, "motif-screen", "query", "--campaign", "hpc", "--status", "computed", "--format", "json",
                "--limit", "100")
    assert q.returncode == 0, q.stderr
    rows = json.loads(q.stdout)
    assert rows and all(r["oracle_source"] == "chgnet" for r in rows)
    open_db(tmp_path)
    assert_consistent_campaign("hpc")
    before = database_counts("hpc")

    lpad_fws = run_cli(tmp_path, "lpad", "get_fws", "-n", "motif_screen hpc r0 generate", "-d", "ids")
    fw_id = json.loads(lpad_fws.stdout)
    fw_id = fw_id[0] if isinstance(fw_id, list) else fw_id
    assert run_cli(tmp_path, "lpad", "rerun_fws", "-i", str(fw_id)).returncode == 0
    assert run_cli(tmp_path, "rlaunch", "rapidfire").returncode == 0
    open_db(tmp_path)
    assert database_counts("hpc") == before  # re-running generate and what follows duplicated nothing


def test_known_structures_are_never_submitted_twice(tmp_path):
    """A second campaign proposing the same structures finds them in the database and skips them."""
    assert run_cli(tmp_path, "motif-screen", "init", ".").returncode == 0
    small = [*SMALL[:4], "--rounds", "1", "--chgnet-steps", "5", "--hit-below", "0.0", "--no-report"]
    assert run_cli(tmp_path, "motif-screen", "run", "--campaign", "first", *small).returncode == 0
    out = run_cli(tmp_path, "motif-screen", "run", "--campaign", "second", *small)
    assert out.returncode == 0, out.stderr[-3000:]
    open_db(tmp_path)
    from motif_screen.db.documents import Candidate

    sent_first = {d.fingerprint for d in Candidate.objects(campaign="first", selection__in=list(keys.SELECTIONS))}
    second = list(Candidate.objects(campaign="second"))
    assert sent_first
    for d in second:
        if d.fingerprint in sent_first:
            assert d.status == keys.STATUS_REJECTED and d.status_reason.startswith(keys.DECISION_KNOWN)


def test_kill_9_mid_campaign_then_resume(tmp_path):
    """`kill -9` while Fireworks run loses at most the one in flight; the re-run completes, no duplicates."""
    import signal
    import time

    assert run_cli(tmp_path, "motif-screen", "init", ".").returncode == 0
    env = {k: v for k, v in os.environ.items() if k not in ("MONGOMOCK_SERVERSTORE_FILE", "FW_CONFIG_FILE")}
    env["MOTIF_SCREEN_PROGRESS"] = "false"
    proc = subprocess.Popen([str(BIN / "motif-screen"), "run", *SMALL, "--no-report"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = tmp_path / "embedded_store.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:  # wait until round 0 has submitted
        if '"motif_screen hpc' in store.read_text() or "chgnet relax" in store.read_text():
            break
        time.sleep(1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    json.loads(store.read_text())  # the file is whole: flushes are atomic

    again = run_cli(tmp_path, "motif-screen", "run", *SMALL, "--no-report")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed" in again.stdout
    open_db(tmp_path)
    assert_consistent_campaign("demo-perovskites")
    from motif_screen.db.documents import Campaign, Candidate, RoundRecord

    assert Campaign.objects.get(name="demo-perovskites").status == "completed"
    for r in RoundRecord.objects(campaign="demo-perovskites"):
        assert Candidate.objects(campaign="demo-perovskites", origin__round=r.round).count() <= r.generated


def test_a_campaign_with_the_shipped_carbon_model_proposes_carbon_and_ranks_by_its_formation_energy(tmp_path):
    """A second crystal family through the same path: the shipped carbon-24 model (decoder picks the
    number of atoms) with generation mode prior and the default target, energy above the hull."""
    assert run_cli(tmp_path, "motif-screen", "init", ".").returncode == 0
    out = run_cli(tmp_path, "motif-screen", "run", "--model", "carbon24", "--generation", "prior", "--campaign", "c",
                  "--candidates", "30", "--budget", "4", "--rounds", "1", "--chgnet-steps", "5", "--no-report")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "registered the shipped model carbon24" in out.stdout
    open_db(tmp_path)
    from motif_screen.db.documents import Candidate, OracleResult

    assert_consistent_campaign("c")
    candidates = list(Candidate.objects(campaign="c"))
    assert {c.formula for c in candidates} == {"C"} and len({c.nsites for c in candidates}) > 1
    results = list(OracleResult.objects(campaign="c"))
    assert len(results) == 4
    assert all(r.formation_energy_per_atom is not None for r in results if r.run_status == "successful")
    refused = run_cli(tmp_path, "motif-screen", "run", "--model", "carbon24", "--campaign", "c2", "--no-report")
    assert refused.returncode == 2 and "cannot make ABX3 perovskites" in refused.stderr
