"""`motif-screen plot latent`: a PNG map from a CSV, coloured by a column, a prediction or a motif."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from motif_screen import keys
from motif_screen.cli.main import main
from motif_screen.cli.plot import dominant_motif, pca_2d
from motif_screen.errors import InputError
from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
from motif_screen.model.checkpoint import save_autoencoder

TINY = dict(latent_dim=8, encoder_options=dict(channels=8, layers=1, latent_dim=8, latent_vectors=2),
            decoder=dict(channels=8, num_layers=1, max_atoms=8, flow_steps=2))


def perovskite(a, b, length):
    return Structure(Lattice.cubic(length), [a, b, "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plot")
    structures = [perovskite(a, b, 3.8 + 0.05 * i) for i, (a, b) in enumerate([("Sr", "Ti"), ("K", "Nb"), ("Ba", "Ti"), ("Sr", "Zr")] * 3)]
    pd.DataFrame({"material_id": range(12), "cif": [s.to(fmt="cif") for s in structures],
                  "heat_ref": np.linspace(-2, 1, 12)}).to_csv(folder / "data.csv")
    torch.manual_seed(0)
    model = build_autoencoder(AutoencoderConfig(elements=[8, 19, 22, 38, 40, 41, 56], properties=[keys.FORMATION_ENERGY], **TINY))
    save_autoencoder(model, folder / "tiny.pt")
    return folder


@pytest.mark.parametrize("color", ["heat_ref", keys.FORMATION_ENERGY, "motif", "element:Ti"])
def test_plot_latent_writes_a_png(setup, color, capsys):
    out = setup / f"map-{color.replace(':', '_')}.png"
    code = main(["plot", "latent", "--model", str(setup / "tiny.pt"), "--data", str(setup / "data.csv"),
                 "--color-by", color, "-o", str(out)])
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "12 points" in capsys.readouterr().out


def test_unknown_colour_is_a_clear_error(setup, capsys):
    code = main(["plot", "latent", "--model", str(setup / "tiny.pt"), "--data", str(setup / "data.csv"),
                 "--color-by", "nonsense", "-o", str(setup / "x.png")])
    assert code == 2 and "cannot colour by 'nonsense'" in capsys.readouterr().err


def test_pca_projects_on_the_leading_axes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * np.array([10.0, 3.0, 0.1, 0.1, 0.1])
    xy, explained = pca_2d(x)
    assert xy.shape == (200, 2) and explained[0] > 0.85 and explained[1] > 0.05
    with pytest.raises(InputError):
        pca_2d(x[:1])


def test_motif_signature_of_a_perovskite():
    assert dominant_motif(perovskite("Sr", "Ti", 3.9)) == "cuboctahedral+octahedral"


def test_output_names_what_is_written(setup, capsys):
    argv = ["plot", "latent", "--model", str(setup / "tiny.pt"), "--data", str(setup / "data.csv"), "-o"]
    folder = setup / "maps"
    folder.mkdir()
    assert main([*argv, str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is a folder; give the PNG file to write" in err and list(folder.iterdir()) == []
    assert main([*argv, str(setup / "no_suffix")]) == 0
    assert f"wrote {setup / 'no_suffix.png'} " in capsys.readouterr().out
    assert (setup / "no_suffix.png").read_bytes()[:4] == b"\x89PNG" and not (setup / "no_suffix").exists()
