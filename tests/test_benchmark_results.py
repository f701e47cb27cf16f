"""Every committed benchmark result follows the contract that is checked from outside."""

import json
import math
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
CHECKED_METRICS = {
    "tetris": ["rotated_accuracy_min"],
    "qm9_missing_atom": ["accuracy_19", "accuracy_23", "accuracy_25_29", "train_minutes", "channels",
                         "accuracy_19_random_draw"],
    "properties": ["perov5_heat_ref_mae", "qm9_gap_mae_ev"],
    "throughput": ["speedup_vs_chgnet_energy_min", "speedup_vs_chgnet_full_min"],
    "perov5_reconstruction": ["match_rate", "rmse", "match_rate_best_of_k", "candidates_best_of_k", "n_dev"],
    "perov5_generation": ["structural_validity", "composition_validity", "cov_r", "cov_p", "cov_references",
                          "composition_validity_charge_balanced"],
    "qm9_generation": ["atom_stability", "molecule_stability", "validity", "atom_stability_valence_paired"],
    "generation_speed": ["speedup_vs_pyxtal", "speedup_vs_pyxtal_any_group"],
    "dedup_speed": ["total_dedup_s", "speedup_vs_pymatgen"],
}
# benchmarks of a shipped checkpoint: their JSON names the file by its SHA-256 and what it records of its making
MEASURE_A_CHECKPOINT = ("perov5_reconstruction", "perov5_generation", "qm9_generation", "generation_speed",
                        "carbon24_reconstruction", "decode_steps", "family_prototypes")


@pytest.mark.parametrize("path", RESULTS, ids=[p.stem for p in RESULTS])
def test_result_files_have_the_agreed_shape(path):
    result = json.loads(path.read_text())
    for key in ("name", "command", "data", "metrics", "anchors", "date"):
        assert key in result, f"{path.name} lacks {key}"
    assert result["name"] == path.stem
    for name, value in result["metrics"].items():
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), name
    for metric in CHECKED_METRICS.get(path.stem, []):
        assert metric in result["metrics"], f"{path.name} lacks the metric {metric}"
    assert f"`{path.stem}.py`" in (ROOT / "benchmarks" / "README.md").read_text()


@pytest.mark.parametrize("name", MEASURE_A_CHECKPOINT)
def test_results_name_the_checkpoint_they_measured(name):
    """A figure of a model is a figure of one file: when the file changes, the benchmark must run again."""
    sys.path.insert(0, str(ROOT))
    try:
        from motif_screen.provenance import file_sha256
    finally:
        sys.path.pop(0)
    checkpoint = json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())["data"]["checkpoint"]
    assert {"sha256", "data_fingerprint", "code_version", "code_commit", "path"} <= set(checkpoint), checkpoint
    assert checkpoint["data_fingerprint"], f"{name} measured a checkpoint that records no data fingerprint"
    path = ROOT / checkpoint["path"]
    if path.is_file():  # a shipped checkpoint: the JSON is of this very file
        assert file_sha256(path) == checkpoint["sha256"], f"{checkpoint['path']} changed since {name}.json was measured"


def test_the_summary_tables_are_the_json():
    """Both READMEs' summary tables are rendered from results/*.json (benchmarks/summary.py) and nothing else."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import summary
    finally:
        sys.path.pop(0)
    assert summary.main(["--check"]) == 0, "run `python benchmarks/summary.py` after a benchmark"
    table = summary.render()
    assert len(summary.ROWS) == table.count("\n| `") and all(f"`{r.benchmark}.py`" in table for r in summary.ROWS)
    benchmarked = {p.stem for p in RESULTS}
    assert {r.benchmark for r in summary.ROWS} == benchmarked, "every benchmark has a summary row, and only those"


def test_a_verdict_is_computed_from_the_goal():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from summary import Goal, Row
    finally:
        sys.path.pop(0)
    row = Row("x", "h", lambda m: "", "a", (Goal("a", ">=", 0.99, "≥ 99%"), Goal("b", "<=", 0.015, "RMSE ≤ 0.015")))
    assert row.verdict({"a": 0.99, "b": 0.015}) == "met"
    assert row.verdict({"a": 0.98, "b": 0.01}) == "missed: ≥ 99%"
    assert row.verdict({"a": 0.5, "b": 0.2}) == "missed: ≥ 99%; RMSE ≤ 0.015"
    assert Row("x", "h", lambda m: "", "a").verdict({}) == "context (no goal)"
    assert Row("x", "h", lambda m: "", "a", versus=("mae", 0.05, "CGCNN")).verdict({"mae": 0.115}) == "no goal; 2.3× CGCNN's error"


def test_write_result_refuses_nested_or_missing_values(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from results_io import write_result
    finally:
        sys.path.pop(0)
    base = {"name": "x", "command": "c", "data": "d", "anchors": {}}
    with pytest.raises(ValueError, match="finite numbers"):
        write_result(tmp_path / "x.json", {**base, "metrics": {"a": {"nested": 1}}})
    nan = json.loads(write_result(tmp_path / "nan.json", {**base, "metrics": {"a": float("nan"), "b": 2}}).read_text())
    assert nan["metrics"] == {"b": 2} and nan["undefined_metrics"] == ["a"]
    with pytest.raises(ValueError, match="lacks"):
        write_result(tmp_path / "x.json", {"metrics": {}})
    assert not (tmp_path / "x.json").exists()
    written = json.loads(write_result(tmp_path / "x.json", {**base, "metrics": {"a": 1.5}}).read_text())
    assert written["metrics"] == {"a": 1.5} and written["date"]


# every section's tables are held to its JSON: every row `| `key` (...) | value [low, high] | ...` must show the
# JSON's value (and interval) to the digits it prints; a value printed with % is the JSON's fraction × 100
HELD_SECTIONS = tuple(p.stem for p in RESULTS)
ROW = re.compile(r"^\| `([a-z0-9_]+)`[^|]*\| ([^|]+)\|", re.M)
NUMBER = re.compile(r"-?\d+(?:\.(\d+))?( ?%)?")


def readme_section(name: str) -> str:
    text = (ROOT / "benchmarks" / "README.md").read_text()
    start = text.index(f"(`{name}.py` → `results/{name}.json`)")
    end = text.find("\n## ", start)
    return text[start: end if end > 0 else None]


def shows(printed: re.Match, value: float) -> bool:
    decimals = len(printed.group(1) or "")
    scale = 100.0 if printed.group(2) else 1.0
    return abs(float(printed.group(0).rstrip(" %")) - scale * value) <= 0.5 * 10**-decimals + 1e-12


@pytest.mark.parametrize("name", HELD_SECTIONS)
def test_readme_tables_show_what_the_json_holds(name):
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path.name} not written yet")
    metrics = json.loads(path.read_text())["metrics"]
    section = readme_section(name)
    rows = ROW.findall(section)
    assert rows, f"no held rows in the README section of {name}"
    lines = section.splitlines()
    separator = re.compile(r"^\|[-:| ]+\|$")
    for i, line in enumerate(lines):  # every table row below a header names the metric it shows
        header = i + 1 < len(lines) and separator.match(lines[i + 1])
        if line.startswith("|") and not separator.match(line) and not header:
            assert ROW.match(line), f"README section of {name}: a table row that names no JSON metric: {line[:80]}"
    for key, cell in rows:
        assert key in metrics, f"README row {key} is not a metric of {path.name}"
        printed = list(NUMBER.finditer(cell.replace(",", "").replace("\u2212", "-")))  # typographic minus
        assert printed and shows(printed[0], metrics[key]), f"{key}: README shows {cell.strip()}, JSON {metrics[key]}"
        if "[" in cell:  # the interval, named <key>_ci_low/_ci_high or <key>_low/_high
            low, high = printed[1], printed[2]
            suffix = "_ci" if f"{key}_ci_low" in metrics else ""
            assert shows(low, metrics[f"{key}{suffix}_low"]) and shows(high, metrics[f"{key}{suffix}_high"]), key


def test_the_readme_quotes_the_shipped_heads_as_their_checkpoint_records_them():
    """The README's figures of the shipped heads (held-out chemistry) are the test metrics the checkpoint records."""
    import torch

    payload = torch.load(ROOT / "motif_screen" / "pretrained" / "perov5_autoencoder.pt", weights_only=True)
    metrics = payload["metrics"]
    text = " ".join((ROOT / "README.md").read_text().split())
    found = re.search(r"the error is ([\d.]+) eV/atom MAE, Spearman ([\d.]+), with σ covering (\d+)% / (\d+)% at 1σ / 2σ",
                      text)
    assert found, "the README no longer quotes the heads' held-out figures in the expected sentence"
    target = "formation_energy_per_atom"
    quoted = [float(x) for x in found.groups()]
    recorded = [metrics[f"test_mae_{target}"], metrics[f"test_spearman_{target}"],
                100 * metrics[f"test_coverage_1sigma_{target}"], 100 * metrics[f"test_coverage_2sigma_{target}"]]
    assert abs(quoted[0] - recorded[0]) < 0.005 and abs(quoted[1] - recorded[1]) < 0.005, (quoted, recorded)
    assert abs(quoted[2] - recorded[2]) < 0.5 and abs(quoted[3] - recorded[3]) < 0.5, (quoted, recorded)
