"""`motif-screen generate`: CIFs + provenance CSV; bad input is one line and exit status 2."""

from __future__ import annotations

import pandas as pd
import pytest

from motif_screen import keys
from motif_screen.cli.main import main


def _table(out):
    frame = pd.read_csv(out / "generated.csv")
    for _, row in frame.iterrows():
        assert (out / row["file"]).is_file()
        assert row["valid"] == (out / row["file"]).parent.samefile(out)
    return frame


def test_prior_writes_cifs_and_provenance(checkpoint, tmp_path, capsys):
    out = tmp_path / "prior"
    assert main(["generate", "prior", "--model", str(checkpoint), "--n", "5", "--seed", "3", "-o", str(out)]) == 0
    frame = _table(out)
    assert len(frame) == 5 and set(frame["mode"]) == {"prior"} and set(frame["model_name"]) == {"tiny"}
    assert frame["latent"].str.split().map(len).eq(8).all()
    assert f"pred_{keys.FORMATION_ENERGY}" in frame.columns
    assert "of 5 valid" in capsys.readouterr().out


def test_perturb_and_interpolate_record_their_parents(checkpoint, seed_files, tmp_path):
    out = tmp_path / "perturb"
    assert main(["generate", "perturb", "--model", str(checkpoint), "--seeds", *map(str, seed_files), "--n", "4", "-o", str(out)]) == 0
    assert set(_table(out)["parents"]) == {"SrTiO3", "KNbO3"}
    out = tmp_path / "interp"
    assert main(["generate", "interpolate", "--model", str(checkpoint), "--seeds", *map(str, seed_files), "--n", "3", "-o", str(out)]) == 0
    assert set(_table(out)["parents"]) == {"SrTiO3;KNbO3"}


def test_constrained_and_guided(checkpoint, tmp_path):
    out = tmp_path / "c"
    assert main(["generate", "constrained", "--model", str(checkpoint), "--composition", "KNbO3", "--n", "2", "-o", str(out)]) == 0
    assert set(_table(out)["formula"]) == {"KNbO3"}
    out = tmp_path / "g"
    assert main(["generate", "guided", "--model", str(checkpoint), "--target", keys.FORMATION_ENERGY, "--n", "2", "-o", str(out)]) == 0
    assert len(_table(out)) == 2


@pytest.mark.parametrize(
    "extra,message",
    [
        (["prior", "--n", "0"], "between 1 and 100,000"),
        (["perturb", "--n", "2"], "needs --seeds"),
        (["perturb", "--seeds", "missing.cif"], "does not exist"),
        (["constrained", "--composition", "Ba-Ti-O"], "never saw"),
        (["guided"], "needs --target"),
        (["prior", "--candidates", "0"], "at least 1"),
    ],
)
def test_bad_input_is_one_clear_line(checkpoint, tmp_path, capsys, extra, message):
    code = main(["generate", *extra, "--model", str(checkpoint), "-o", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["generate", "prior", "--model", str(tmp_path / "none.pt"), "-o", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _prior(checkpoint, out, n, *extra) -> int:
    return main(["generate", "prior", "--model", str(checkpoint), "--n", str(n), "-o", str(out), *extra])


def test_a_second_run_into_one_folder_is_refused_or_replaces_the_first(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert _prior(checkpoint, out, 3) == 0
    (out / "notes.txt").write_text("mine")
    first = sorted(p.name for p in out.rglob("*.cif"))
    assert _prior(checkpoint, out, 2) == 2
    err = capsys.readouterr().err
    assert "already holds the output of an earlier run (3 structure file(s) and generated.csv)" in err
    assert "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.rglob("*.cif")) == first  # refused: nothing touched
    assert _prior(checkpoint, out, 2, "--overwrite") == 0
    frame = _table(out)
    assert len(frame) == 2
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.cif")) == sorted(frame["file"])  # no stale CIF
    assert (out / "notes.txt").read_text() == "mine"  # files generate did not write are never removed


def test_planted_links_in_the_output_folder(checkpoint, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "prior-000000.cif").symlink_to(victim)
    assert _prior(checkpoint, out, 1) == 0
    assert victim.read_text() == "precious" and not (out / "prior-000000.cif").is_symlink()

    outside = tmp_path / "outside"
    outside.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "invalid").symlink_to(outside)
    assert _prior(checkpoint, other, 1) == 2
    assert "invalid is a symbolic link, not a folder" in capsys.readouterr().err
    assert list(outside.iterdir()) == []
