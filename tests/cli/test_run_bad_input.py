"""`motif-screen run` refuses bad setups with one clear message and writes nothing."""

import pytest

from motif_screen.cli.main import main


def test_report_folder_that_cannot_be_created(config_dir, capsys):
    blocker = config_dir / "a_file"
    blocker.write_text("not a folder")
    before = (config_dir / "embedded_store.json").read_text()
    assert main(["run", "--config-dir", str(config_dir), "--report", str(blocker / "report")]) == 2
    assert "cannot create the report folder" in capsys.readouterr().err
    assert (config_dir / "embedded_store.json").read_text() == before


def test_store_that_is_not_json(config_dir, capsys):
    (config_dir / "embedded_store.json").write_text("{broken")
    assert main(["run", "--config-dir", str(config_dir)]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and "Traceback" not in err


def test_invalid_campaign_options(config_dir, capsys):
    assert main(["run", "--config-dir", str(config_dir), "--budget", "0"]) == 2
    assert main(["run", "--config-dir", str(config_dir), "--candidates", "2000000"]) == 2
    err = capsys.readouterr().err
    assert "budget" in err and "candidates_per_round" in err


def test_corrupt_or_missing_checkpoint_is_a_model_error(db, tmp_path):
    from motif_screen.errors import ModelError
    from motif_screen.pretrained import ensure_registered, shipped_checkpoint

    corrupt = tmp_path / "perov5.pt"
    corrupt.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ModelError):
        ensure_registered("perov5", checkpoint=corrupt)
    with pytest.raises(ModelError, match="no shipped model"):
        shipped_checkpoint("nope")
    from motif_screen.db.documents import ModelVersion

    assert ModelVersion.objects.count() == 0


def _stored(config_dir):
    import json

    content = json.loads((config_dir / "embedded_store.json").read_text())["databases"]
    return content.get("motif_screen", {}).get("ms_campaigns", {}).get("documents", [])


@pytest.mark.parametrize("argv, message", [
    (["--hit-below", "nan"], "not a finite number"),
    (["--hit-below", "inf"], "not a finite number"),
    (["--motif", "garbage!!"], "motif"),
    (["--budget", "1", "--rounds", "3"], "no oracle calculation"),
    (["--seed", str(2**70)], "seed"),
])
def test_a_campaign_that_would_fail_later_is_refused_before_anything_is_stored(config_dir, capsys, argv, message):
    assert main(["run", "--config-dir", str(config_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert _stored(config_dir) == []


def test_a_corrupt_model_in_gridfs_is_refused_before_the_campaign_is_stored(db, config_dir, capsys):
    from motif_screen.db.repository import Repository

    Repository(db).add_model_version("broken", b"not a checkpoint at all", promoted=True)
    db.flush()
    from motif_screen.db import embedded

    embedded.close_all()
    assert main(["run", "--config-dir", str(config_dir), "--model", "broken", "--budget", "1", "--rounds", "1"]) == 2
    err = capsys.readouterr().err
    assert "broken" in err and "Traceback" not in err
    assert _stored(config_dir) == []


@pytest.mark.slow
def test_run_exits_non_zero_naming_a_fizzled_step_and_resumes_after_the_fix(config_dir, capsys, monkeypatch):
    from motif_screen.campaign import steps
    from motif_screen.db import embedded

    real = steps.select_round

    def broken(*args, **kwargs):
        raise RuntimeError("the prescreen broke (injected)")

    small = ["run", "--config-dir", str(config_dir), "--candidates", "20", "--budget", "1", "--rounds", "1",
             "--chgnet-steps", "3", "--no-report"]
    monkeypatch.setattr(steps, "select_round", broken)
    assert main(small) == 1
    err = capsys.readouterr().err
    assert "did not complete" in err and "r0 prescreen" in err and "the prescreen broke (injected)" in err
    embedded.close_all()
    monkeypatch.setattr(steps, "select_round", real)
    assert main(small) == 0  # the fizzled step is re-run; the campaign completes
    out = capsys.readouterr().out
    assert "re-run" in out and "[completed]" in out
