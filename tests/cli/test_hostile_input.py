"""Classes of hostile input × every entry point that takes them: one line, exit 2, no traceback.

Each class is a table of cases and each entry point a small adaptor, so a new entry point that
reads structure files or writes into a folder joins the table once and inherits every class:
encodings (UTF-16, UTF-8 BOM), special files (FIFO, /dev/null, folders), absurd numbers, huge
inputs and unwritable paths.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from motif_screen import limits
from motif_screen.cli.main import main
from motif_screen.errors import InputError
from motif_screen.structures.io import read_structures



@pytest.fixture
def seeds(perovskites):
    return [perovskites["SrTiO3"], perovskites["KNbO3"]]


def _cif(structure, name: str) -> str:
    """A CIF that starts at its data_ line (no comment before it: a BOM then sits on data_)."""
    text = structure.to(fmt="cif")
    return f"data_{name}\n" + text[text.index("\n", text.index("data_")) + 1 :]


def _two_block_cif(seeds) -> str:
    return _cif(seeds[0], "SrTiO3") + "\n" + _cif(seeds[1], "KNbO3")


def _edit_cif(seeds, pattern: str, replacement: str) -> str:
    return re.sub(pattern, replacement, _cif(seeds[0], "SrTiO3"), count=1, flags=re.M)


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _symmetry_bomb() -> str:
    rows = "\n".join(f"  O  O{i}  1  {0.01 * i:.2f}  0.13  0.27  1" for i in range(50))
    return ("data_bomb\n_symmetry_space_group_name_H-M   Fm-3m\n_symmetry_Int_Tables_number   225\n"
            "_cell_length_a 40\n_cell_length_b 40\n_cell_length_c 40\n"
            "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
            "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_symmetry_multiplicity\n"
            " _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n" + rows + "\n")


def _json_with(seeds, lattice) -> str:
    bad = Structure(lattice, ["Sr", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return json.dumps([seeds[0].as_dict(), bad.as_dict()])


def _csv(structures, encoding="utf-8") -> bytes:
    frame = pd.DataFrame({"material_id": [f"m{i}" for i in range(len(structures))], "cif": [s.to(fmt="cif") for s in structures]})
    return frame.to_csv(index=False).encode(encoding)


# name -> (make the input under tmp_path, the message it must give; None = it is read)
STRUCTURE_FILES = {
    # encodings
    "utf16_csv": (lambda d, s: _write(d / "seeds.csv", _csv(s, "utf-16")), None),
    "utf16_cif": (lambda d, s: _write(d / "seeds.cif", _two_block_cif(s).encode("utf-16")), None),
    "utf8_bom_cif": (lambda d, s: _write(d / "seeds.cif", b"\xef\xbb\xbf" + _two_block_cif(s).encode()), None),
    "utf8_bom_json": (lambda d, s: _write(d / "seeds.json", b"\xef\xbb\xbf" + json.dumps([x.as_dict() for x in s]).encode()), None),
    "utf16_without_bom": (lambda d, s: _write(d / "seeds.cif", _two_block_cif(s).encode("utf-16-le")), "contains NUL bytes"),
    # special files
    "fifo": (lambda d, s: _fifo(d / "seeds.cif"), "seeds.cif is a FIFO (named pipe), not a regular file"),
    "dev_null": (lambda d, s: Path(os.devnull), "/dev/null is a character device, not a regular file"),
    "folder_without_structures": (lambda d, s: d, "contains no structure files"),
    "missing": (lambda d, s: d / "missing.cif", "missing.cif does not exist"),
    # absurd numbers
    "poscar_declaring_1e9_atoms": (
        lambda d, s: _write(d / "POSCAR", "x\n1.0\n3 0 0\n0 3 0\n0 0 3\nSi\n999999999\nDirect\n0 0 0\n"),
        "declares 999,999,999 atoms; a structure may have at most 2,000",
    ),
    "xyz_declaring_1e9_atoms": (lambda d, s: _write(d / "seeds.xyz", "999999999\n\nSr 0 0 0\n"), "frame 0 declares 999,999,999 atoms"),
    "cif_1e300_lattice": (lambda d, s: _write(d / "seeds.cif", _edit_cif(s, r"^_cell_length_a .*$", "_cell_length_a 1e300")),
                          "_cell_length_a is 1e300; cell lengths must be above 0 and at most 1,000 Å"),
    "cif_negative_lattice_parameter": (lambda d, s: _write(d / "seeds.cif", _edit_cif(s, r"^_cell_length_a .*$", "_cell_length_a -3.9")),
                                       "_cell_length_a is -3.9"),
    "cif_fractional_coordinate_1e20": (lambda d, s: _write(d / "seeds.cif", _edit_cif(s, r"^(  Sr  Sr0  1  )\S+", r"\g<1>1e20")),
                                       "_atom_site_fract_x 1e20, outside ±1,000"),
    "json_1e300_lattice": (lambda d, s: _write(d / "seeds.json", _json_with(s, Lattice.cubic(1e300))), "lattice vector a is 1e+300 Å long"),
    "json_fractional_coordinate_1e20": (
        lambda d, s: _write(d / "seeds.json", json.dumps([s[0].as_dict(), {**s[1].as_dict(), "sites": [
            {**s[1].as_dict()["sites"][0], "abc": [1e20, 0, 0]}]}])),
        "fractional coordinate 1e+20",
    ),
    # huge inputs
    "cif_symmetry_expansion": (lambda d, s: _write(d / "seeds.cif", _symmetry_bomb()), "can expand to 9,600 atoms"),
    "file_over_the_size_limit": (lambda d, s: _write(d / "seeds.csv", _csv(s * 3)), "structure files may be at most"),
}


def _read_structures(path, tmp_path, checkpoint) -> tuple[int, str]:
    try:
        pairs = read_structures(path)
    except InputError as exc:
        return 2, f"error: {exc}\n"
    return (0, "") if len(pairs) == 2 else (1, f"read {len(pairs)} structures, not the 2 in the file")


def _generate_seeds(path, tmp_path, checkpoint) -> int:
    return main(["generate", "perturb", "--model", str(checkpoint), "--seeds", str(path), "--n", "2", "-o", str(tmp_path / "gen")])


def _plot_data(path, tmp_path, checkpoint) -> int:
    return main(["plot", "latent", "--model", str(checkpoint), "--data", str(path), "-o", str(tmp_path / "map.png")])


STRUCTURE_READERS = {"read_structures": _read_structures, "generate --seeds": _generate_seeds, "plot --data": _plot_data}


@pytest.mark.parametrize("reader", STRUCTURE_READERS)
@pytest.mark.parametrize("case", STRUCTURE_FILES)
def test_structure_files(case, reader, tmp_path, checkpoint, seeds, capsys, monkeypatch):
    make, message = STRUCTURE_FILES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    path = make(folder, seeds)
    if case == "file_over_the_size_limit":
        monkeypatch.setattr(limits, "MAX_STRUCTURE_FILE_BYTES", path.stat().st_size - 1)
    result = STRUCTURE_READERS[reader](path, tmp_path, checkpoint)
    code, err = result if isinstance(result, tuple) else (result, capsys.readouterr().err)
    if message is None:
        assert code == 0, err
    else:
        assert code == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# --- output paths --------------------------------------------------------------------------------
def _generate_out(out, tmp_path, checkpoint, config_dir, seeds) -> int:
    return main(["generate", "prior", "--model", str(checkpoint), "--n", "2", "-o", str(out)])


def _query_out(out, tmp_path, checkpoint, config_dir, seeds) -> int:
    return main(["query", "--config-dir", str(config_dir), "--format", "cif", "--out", str(out)])


def _plot_out(out, tmp_path, checkpoint, config_dir, seeds) -> int:
    data = _write(tmp_path / "data.csv", _csv(seeds))
    return main(["plot", "latent", "--model", str(checkpoint), "--data", str(data), "-o", str(out)])


FOLDER_WRITERS = {"generate -o": _generate_out, "query --out": _query_out}
FILE_WRITERS = {"plot -o": _plot_out}


def _existing_file(d: Path) -> Path:
    return _write(d / "taken.png", b"old")


def _below_a_file(d: Path) -> Path:
    return _existing_file(d) / "sub"


# name -> (make the path, message for a folder output, message for a file output; None = written)
OUTPUT_PATHS = {
    "regular_file": (_existing_file, "taken.png is a regular file, not a folder", None),
    "dev_null": (lambda d: Path(os.devnull), "/dev/null is a character device, not a folder",
                 "/dev/null is a character device, not a regular file"),
    "fifo": (lambda d: _fifo(d / "pipe"), "is a FIFO (named pipe), not a folder", "is a FIFO (named pipe), not a regular file"),
    "below_a_file": (_below_a_file, "Not a directory", "Not a directory"),
    "folder": (lambda d: d, None, "is a folder; give the PNG file to write"),
}


@pytest.fixture
def fresh_fireworks_logger(monkeypatch):
    """FireWorks binds its 'launchpad' logger to the stdout of the first test that opened a
    LaunchPad, closed since; a fresh one keeps "--- Logging error ---" out of this test's stderr."""
    import logging

    from fireworks.utilities import fw_utilities

    monkeypatch.setattr(fw_utilities, "PREVIOUS_STREAM_LOGGERS", [])
    monkeypatch.setattr(logging.getLogger("launchpad"), "handlers", [])


@pytest.fixture
def store_with_a_candidate(fresh_fireworks_logger, db, config_dir, perovskites):
    from motif_screen.db.records import upsert_candidate

    upsert_candidate("demo", perovskites["SrTiO3"], origin={"method": "prior", "round": 0})
    db.flush()
    return config_dir


@pytest.mark.parametrize("writer", {**FOLDER_WRITERS, **FILE_WRITERS})
@pytest.mark.parametrize("case", OUTPUT_PATHS)
def test_output_paths(case, writer, tmp_path, checkpoint, seeds, capsys, request):
    make, folder_message, file_message = OUTPUT_PATHS[case]
    config_dir = request.getfixturevalue("store_with_a_candidate") if writer == "query --out" else None
    target = tmp_path / "target"
    target.mkdir()
    out = make(target)
    code = {**FOLDER_WRITERS, **FILE_WRITERS}[writer](out, tmp_path, checkpoint, config_dir, seeds)
    err = capsys.readouterr().err
    message = folder_message if writer in FOLDER_WRITERS else file_message
    if message is None:
        assert code == 0, err
    else:
        assert code == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert Path(os.devnull).is_char_device() and not Path(os.devnull + ".png").exists()  # nothing written beside it


# --- absurd numbers and huge values in options ----------------------------------------------------
@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "prior", "--temperature", "1e30"], "--temperature: must be at most 10"),
        (["generate", "prior", "--temperature", "nan"], "--temperature: must be a finite number"),
        (["generate", "perturb", "--scale", "1e30"], "--scale: must be at most 10"),
        (["generate", "prior", "--steps", "0"], "--steps: must be at least 1"),
        (["generate", "prior", "--steps", "-3"], "--steps: must be at least 1"),
        (["generate", "prior", "--steps", "1000000000"], "--steps: must be at most 1,000"),
        (["generate", "prior", "--candidates", "1000000000"], "--candidates: must be at most 64"),
        (["generate", "prior", "--n", "1000000000"], "--n: must be at most 100,000"),
        (["generate", "prior", "--n", "100000", "--candidates", "64"], "one call decodes at most 1,000,000"),
        (["generate", "prior", "--seed", str(2**70)], "--seed: must be at most 4,294,967,295"),
        (["generate", "constrained", "--composition", "-"], "'-' names no element"),
        (["generate", "constrained", "--composition", "Ba1e30TiO3"], "'Ba1e30TiO3' asks for 1e+30 atoms"),
        (["generate", "constrained", "--composition", "Ba1e400"], "asks for inf atoms"),
    ],
)
def test_absurd_numbers_are_refused_before_the_model_loads(argv, message, tmp_path, capsys):
    model = tmp_path / "never-read.pt"  # a model path that does not exist: refusing comes first
    assert main([*argv, "--model", str(model), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


HUGE = "Ba" * 50_000  # 100,000 characters


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "constrained", "--composition", HUGE, "-o", "{tmp}/out"],
        ["generate", "prior", "--n", "9" * 100_000, "-o", "{tmp}/out"],
        ["generate", HUGE, "-o", "{tmp}/out"],
        ["query", "--status", HUGE],
        ["plot", "latent", "--model", "{ckpt}", "--data", "{tmp}/data.csv", "--color-by", HUGE, "-o", "{tmp}/m.png"],
    ],
    ids=["generate --composition", "generate --n", "generate MODE", "query --status", "plot --color-by"],
)
def test_huge_values_are_quoted_short(argv, tmp_path, checkpoint, seeds, capsys):
    _write(tmp_path / "data.csv", _csv(seeds))
    argv = [a.format(tmp=tmp_path, ckpt=checkpoint) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err) < 1_200 and "characters in all" in err and len(err.strip().splitlines()) == 1, err[:300]
