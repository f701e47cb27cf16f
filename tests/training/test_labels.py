"""`motif-screen label`: labels from a local oracle, failures recorded, interrupted runs resumed."""

from __future__ import annotations

import gzip
import json
import math

import pytest
from pymatgen.core import Lattice, Structure

from motif_screen import keys
from motif_screen.cli.main import main
from motif_screen.errors import ConfigError, InputError
from motif_screen.training import labels
from motif_screen.training.datasets import load_data


def perovskite(a, b, x, length):
    return Structure(Lattice.cubic(length), [a, b, x, x, x],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


CELLS = [perovskite("Sr", "Ti", "O", 3.9), perovskite("Ba", "Zr", "O", 4.2), perovskite("K", "Nb", "O", 4.0),
         perovskite("Cs", "Pb", "F", 4.8)]


@pytest.fixture
def fake_oracle(monkeypatch):
    """A local oracle that fails on Ba (as a relaxation can), counts its calls, and can be interrupted."""
    calls = []

    def run(structure, steps, fmax, interrupt_after=None):
        calls.append(structure.composition.reduced_formula)
        if interrupt_after is not None and len(calls) > interrupt_after:
            raise KeyboardInterrupt
        if "Ba" in structure.composition:
            raise RuntimeError("the relaxation blew up")
        return {"energy": -40.0, "energy_per_atom": -8.0, "final_structure": structure, "converged": True,
                "max_force": 0.01, "steps": 7, "seconds": 0.1, keys.FORMATION_ENERGY: -2.5, "missing_references": []}

    oracle = labels.LocalOracle("fake", "fake", run, lambda: "0.0-test", {"steps": 10, "fmax": 0.1})
    monkeypatch.setitem(labels.ORACLES, "fake", oracle)
    return calls


def _items():
    return [labels.LabelItem(f"cell{i}", s, {"mode": "file"}) for i, s in enumerate(CELLS)]


def test_labels_record_values_and_failures_never_zeros(tmp_path, fake_oracle):
    out = tmp_path / "labels.jsonl"
    counts = labels.label_structures(_items() + _items()[:1], out, "fake", progress=False)
    assert counts["labelled"] == 3 and counts["failed"] == 1 and counts["duplicates"] == 1
    records = labels.read_labels(out)
    assert len(records) == 4 and {r["source"] for r in records} == {"fake"}
    failed = [r for r in records if r["error"]]
    assert len(failed) == 1 and "blew up" in failed[0]["error"] and failed[0]["formula"] == "BaZrO3"
    assert keys.FORMATION_ENERGY not in failed[0] and "energy" not in failed[0]  # no zeros stand in for a value
    good = [r for r in records if not r["error"]]
    assert all(r[keys.FORMATION_ENERGY] == -2.5 and r["oracle_version"] == "0.0-test" for r in good)
    assert Structure.from_dict(good[0]["relaxed_structure"]) == CELLS[0]
    assert [r["id"] for r in labels.training_rows(records)] == ["cell0", "cell2", "cell3"]


def test_an_interrupted_run_resumes_without_relabelling(tmp_path, fake_oracle, monkeypatch):
    out = tmp_path / "labels.jsonl"
    oracle = labels.ORACLES["fake"]
    monkeypatch.setitem(labels.ORACLES, "fake", labels.LocalOracle(
        "fake", "fake", lambda s, **kw: oracle.run(s, interrupt_after=2, **kw), oracle.version, oracle.defaults))
    with pytest.raises(KeyboardInterrupt):
        labels.label_structures(_items(), out, "fake", progress=False)
    assert len(labels.read_labels(out)) == 2
    with out.open("a") as handle:  # a kill in the middle of a write leaves half a line
        handle.write('{"format": "motif_screen.labels/1", "id": "cel')
    monkeypatch.setitem(labels.ORACLES, "fake", oracle)
    fake_oracle.clear()
    counts = labels.label_structures(_items(), out, "fake", progress=False)
    assert counts["already"] == 2 and counts["labelled"] + counts["failed"] == 2
    assert fake_oracle == ["KNbO3", "CsPbF3"]  # only what was missing
    assert sorted(r["id"] for r in labels.read_labels(out)) == ["cell0", "cell1", "cell2", "cell3"]


def test_one_file_holds_one_oracle_and_settings(tmp_path, fake_oracle):
    out = tmp_path / "labels.jsonl"
    labels.label_structures(_items()[:1], out, "fake", progress=False)
    with pytest.raises(InputError, match="one oracle and settings"):
        labels.label_structures(_items(), out, "fake", settings={"steps": 3}, progress=False)
    with pytest.raises(InputError, match="gzip the file when the run is done"):
        labels.label_structures(_items(), tmp_path / "labels.jsonl.gz", "fake", progress=False)
    with pytest.raises(InputError, match="no local oracle"):
        labels.label_structures(_items(), tmp_path / "x.jsonl", "vasp", progress=False)
    (tmp_path / "other.jsonl").write_text('{"a": 1}\n{"b": 2}\n')
    with pytest.raises(InputError, match="not a label record"):
        labels.read_labels(tmp_path / "other.jsonl")


def test_label_files_train_one_source_unless_mixing_is_asked_for(tmp_path, fake_oracle):
    out = tmp_path / "labels.jsonl"
    labels.label_structures(_items(), out, "fake", progress=False)
    gz = tmp_path / "labels.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(out.read_text())
    data = load_data({"source": "labels", "path": "labels.jsonl.gz"}, [keys.FORMATION_ENERGY], base_dir=tmp_path)
    assert len(data) == 3 and data.sources == ["fake"] * 3 and data.targets[keys.FORMATION_ENERGY] == [-2.5] * 3
    records = labels.read_labels(out)
    mixed = records + [{**records[0], "source": keys.SOURCE_VASP}]
    with pytest.raises(InputError, match="mixed sources"):
        list(labels.training_rows(mixed))
    assert len(list(labels.training_rows(mixed, allow_mixed_sources=True))) == 4
    with pytest.raises(ConfigError, match="allow_mixed_sources"):
        load_data({"source": "mongodb", "sources": [keys.SOURCE_VASP, keys.SOURCE_CHGNET]}, [keys.FORMATION_ENERGY])


def test_generated_candidates_are_decoded_as_round_zero_and_only_valid_ones_kept():
    from tests.model.test_autoencoder import tiny_model

    items, tally = labels.generated_items(tiny_model(), "perovskite", n=4, seed=3, steps=2)
    assert tally["decoded"] == 4 and tally["valid"] == len(items)
    assert sum(v for k, v in tally.items() if k.startswith("invalid")) == 4 - len(items)
    for item in items:
        assert item.origin["mode"] == "family" and item.origin["flow_steps"] == 2 and item.origin["seed"] == 3
    with pytest.raises(InputError, match="unknown generation family"):
        labels.generated_items(tiny_model(), "spinel", n=1, seed=0)


def test_cli_bad_input_is_one_message_and_exit_2(tmp_path, capsys):
    cif = tmp_path / "a.cif"
    CELLS[0].to(filename=str(cif))
    cases = [
        (["label", "-o", str(tmp_path / "o.jsonl")], "not both and not neither"),
        (["label", str(cif), "--generate", "perovskite", "-o", str(tmp_path / "o.jsonl")], "not both"),
        (["label", str(tmp_path / "missing.cif"), "-o", str(tmp_path / "o.jsonl")], "missing.cif"),
        (["label", str(cif), "-o", str(tmp_path / "o.jsonl.gz")], "gzip"),
        (["label", str(cif), "--oracle", "vasp", "-o", str(tmp_path / "o.jsonl")], "no local oracle"),
        (["label", "--generate", "spinel", "-o", str(tmp_path / "o.jsonl")], "unknown family"),
        (["label", str(cif), "-o", str(tmp_path / "nowhere" / "o.jsonl")], "does not exist"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_chgnet_labels_are_the_number_the_campaign_stores(tmp_path):
    """The label's formation energy comes from the CHGNet entry and reference entries through
    oracles.stability, as RunChgnetOracle computes it; it equals (E - sum n_i mu_i) / N."""
    import torch

    from motif_screen.oracles import chgnet

    torch.set_num_threads(1)
    out = tmp_path / "chgnet.jsonl"
    labels.label_structures([labels.LabelItem("sto", CELLS[0])], out, keys.SOURCE_CHGNET,
                            settings={"steps": 3}, progress=False)
    [record] = labels.read_labels(out)
    assert record["source"] == keys.SOURCE_CHGNET and record["oracle_version"] == chgnet.model_version()
    assert record["settings"] == {"steps": 3, "fmax": 0.1} and record["steps"] <= 5  # trajectory frames
    refs = chgnet.elemental_references(["Sr", "Ti", "O"])
    expected = chgnet.formation_energy_per_atom("SrTiO3", record["energy"], refs)
    assert math.isfinite(record[keys.FORMATION_ENERGY]) and record[keys.FORMATION_ENERGY] == pytest.approx(expected)
    assert json.loads(out.read_text().splitlines()[0])["format"] == labels.LABEL_FORMAT


def test_a_relaxation_that_fused_atoms_never_trains(tmp_path, fake_oracle):
    """Label files made before the oracle refused fused cells: the reader leaves such records out, naming why."""
    out = tmp_path / "labels.jsonl"
    labels.label_structures(_items(), out, "fake", progress=False)
    records = labels.read_labels(out)
    fused = perovskite("Sr", "Ti", "O", 3.9)
    fused.translate_sites([2], [0.0, 0.0, 0.43], frac_coords=True)  # an O 0.27 Å from the Ti: fused
    records[0]["relaxed_structure"] = fused.as_dict()
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert "fused (O-Ti 0.27 Å" in labels.failure(labels.read_labels(out)[0])
    assert [r["id"] for r in labels.training_rows(labels.read_labels(out))] == ["cell2", "cell3"]
    dataset = load_data({"source": "labels", "path": str(out)}, [keys.FORMATION_ENERGY])
    assert dataset.names == ["cell2", "cell3"] and "2 failed, fused or without a value" in dataset.description
