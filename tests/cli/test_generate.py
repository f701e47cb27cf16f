"""`motif-screen generate`: CIFs + provenance CSV; bad input is one line and exit status 2."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from motif_screen import keys
from motif_screen.cli.main import main
from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
from motif_screen.model.checkpoint import save_autoencoder

TINY = dict(latent_dim=8, encoder_options=dict(channels=8, layers=1, latent_dim=8, latent_vectors=2),
            decoder=dict(channels=8, num_layers=1, max_atoms=8, flow_steps=2))
ELEMENTS = [8, 19, 22, 38, 41]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_autoencoder(AutoencoderConfig(elements=ELEMENTS, properties=[keys.FORMATION_ENERGY], **TINY))
    model.decoder.lattice_mean.copy_(torch.tensor([2.3, 2.3, 2.3, 90.0, 90.0, 90.0]))
    model.decoder.lattice_std.copy_(torch.tensor([0.1, 0.1, 0.1, 1.0, 1.0, 1.0]))
    model.model_name = "tiny"
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_autoencoder(model, path)
    return path


@pytest.fixture
def seeds(tmp_path):
    paths = []
    for name, (a, b, x) in {"SrTiO3": ("Sr", "Ti", "O"), "KNbO3": ("K", "Nb", "O")}.items():
        s = Structure(Lattice.cubic(4.0), [a, b, x, x, x], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        paths.append(tmp_path / f"{name}.cif")
        s.to(filename=str(paths[-1]))
    return paths


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


def test_perturb_and_interpolate_record_their_parents(checkpoint, seeds, tmp_path):
    out = tmp_path / "perturb"
    assert main(["generate", "perturb", "--model", str(checkpoint), "--seeds", *map(str, seeds), "--n", "4", "-o", str(out)]) == 0
    assert set(_table(out)["parents"]) == {"SrTiO3", "KNbO3"}
    out = tmp_path / "interp"
    assert main(["generate", "interpolate", "--model", str(checkpoint), "--seeds", *map(str, seeds), "--n", "3", "-o", str(out)]) == 0
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
