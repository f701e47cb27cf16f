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
    assert main(["run", "--config-dir", str(config_dir), "--candidates", "1000000"]) == 2
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
