"""Files written inside the folder asked for: safe names from data, nothing followed inside it."""

from __future__ import annotations

import os

import pytest

from motif_screen.errors import InputError
from motif_screen.safe_paths import MAX_NAME_BYTES, OutputFolder, check_name, file_name, replaced_file, slug

HOSTILE_PARTS = ["/../../../../x", "..", ".hidden", "a/b\\c", "x\x00y\n\x1b[31m", "-rf", "é∆", "", "A" * 10_000, "../" * 500]


@pytest.mark.parametrize("part", HOSTILE_PARTS)
def test_file_names_from_data_are_one_plain_component(part):
    name = file_name(part, "65a1f0c2", suffix=".cif")
    assert check_name(name) == name
    assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith((".", "-"))
    assert name.isascii() and name.isprintable() and len(name.encode()) <= MAX_NAME_BYTES
    assert name.endswith("_65a1f0c2.cif")


def test_slug_keeps_ordinary_formulas_and_is_idempotent():
    for formula in ("SrTiO3", "Fe0.5Ni0.5O", "K2NbO3F", "C6H6"):
        assert slug(formula) == formula
    for part in HOSTILE_PARTS:
        assert slug(slug(part)) == slug(part)


@pytest.mark.parametrize("name", ["", ".", "..", "../x", ".x", "a/b", "x\n", "x\x00", "a" * (MAX_NAME_BYTES + 1)])
def test_unsafe_names_are_refused(name):
    with pytest.raises(InputError, match="file name"):
        check_name(name)


def test_write_replaces_a_planted_link_instead_of_following_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.csv").symlink_to(victim)
    with OutputFolder(out) as folder:
        folder.write("index.csv", "a,b\n")
    assert victim.read_text() == "precious"
    assert not (out / "index.csv").is_symlink() and (out / "index.csv").read_text() == "a,b\n"
    assert sorted(os.listdir(out)) == ["index.csv"]  # no temporary file left


def test_a_linked_subfolder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "invalid").symlink_to(outside)
    with OutputFolder(out) as folder, pytest.raises(InputError, match="symbolic link, not a folder"):
        folder.subfolder("invalid")
    assert list(outside.iterdir()) == []


def test_remove_deletes_a_link_not_its_target(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.cif").symlink_to(victim)
    with OutputFolder(tmp_path / "out") as folder:
        assert folder.remove("x.cif") and not folder.remove("x.cif")
    assert victim.read_text() == "precious"


def test_replaced_file_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "map.png"
    with pytest.raises(RuntimeError), replaced_file(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []
    with replaced_file(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png"
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and sorted(os.listdir(tmp_path)) == ["map.png"]
