"""Labels from a locally running oracle: a structure set relaxed by the oracle, one JSON line per structure.

What the campaign's oracle would store for each structure, made once, offline, for training the
property heads on the oracle's own quantity (``motif-screen label``):

* the input structure and the oracle's relaxed structure, total energy, energy per atom;
* ``formation_energy_per_atom`` against the oracle's own elemental references, computed by
  :func:`motif_screen.oracles.stability.formation_energy_per_atom` from the same entries the
  campaign's CHGNet Firetask stores (so a label is the number a campaign would record);
* converged, steps, max force, seconds, ``source`` and the oracle's model version;
* or ``error`` with the reason: a failure is recorded, never a zero, and :func:`training_rows`
  leaves it out.

Records are keyed by :func:`motif_screen.structures.fingerprint.fingerprint` of the input
structure: a run that is interrupted (Ctrl-C, a kill) continues where it stopped and never
relabels a structure already in the file; a structure whose fingerprint is already there
(a duplicate in the input) is labelled once.

A local oracle is a name in :data:`ORACLES` with a function ``structure -> result``; CHGNet is the
one that ships (``source="chgnet"``, never presented as DFT). DFT results are not made here: they
live in MongoDB and train through ``data: {source: mongodb}`` (:mod:`motif_screen.training.datasets`).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.structures.fingerprint import fingerprint
from motif_screen.structures.validity import FUSED_BOND_FRACTION, closest_pair

__all__ = [
    "LABEL_FORMAT",
    "ORACLES",
    "LocalOracle",
    "LabelItem",
    "generated_items",
    "failure",
    "label_structures",
    "read_labels",
    "training_rows",
]

LABEL_FORMAT = "motif_screen.labels/1"  # every record carries it: a foreign JSON-lines file is refused


# --------------------------------------------------------------------------------------------
# oracles that run on this machine
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalOracle:
    """A locally running oracle: ``run(structure, **settings) -> dict`` and its model version.

    ``run`` returns ``energy``, ``energy_per_atom``, ``final_structure`` (pymatgen), ``converged``,
    ``max_force``, ``steps``, ``seconds``, ``formation_energy_per_atom`` (None when a reference is
    missing) and ``missing_references``; it raises on failure (the caller records the reason).
    """

    name: str
    source: str
    run: Callable[..., dict]
    version: Callable[[], str]
    defaults: dict = field(default_factory=dict)


def _chgnet_label(structure, *, steps: int, fmax: float, references_file: str | None = None) -> dict:
    """What :class:`~motif_screen.firetasks.oracle.RunChgnetOracle` stores, without a database:
    a CHGNet relaxation, its entry, and the formation energy against the CHGNet elemental reference
    entries, through :func:`motif_screen.oracles.stability.formation_energy_per_atom`."""
    from motif_screen.oracles import chgnet
    from motif_screen.oracles.stability import formation_energy_per_atom

    result = chgnet.chgnet_relax(structure, fmax=fmax, steps=steps)
    entry = chgnet.entry_of(result)
    elements = [el.symbol for el in structure.composition.elements]
    references = chgnet.elemental_reference_entries(elements, references_file)
    value, missing = formation_energy_per_atom(entry, references.values())
    result[keys.FORMATION_ENERGY] = value
    result["missing_references"] = missing
    return result


def _chgnet_version() -> str:
    from motif_screen.oracles import chgnet

    return chgnet.model_version()


ORACLES: dict[str, LocalOracle] = {
    keys.SOURCE_CHGNET: LocalOracle(
        name=keys.SOURCE_CHGNET,
        source=keys.SOURCE_CHGNET,
        run=_chgnet_label,
        version=_chgnet_version,
        # the campaign's: `motif-screen run --chgnet-steps` default and chgnet.DEFAULT_FMAX
        defaults={"steps": 100, "fmax": 0.1},
    ),
}


def local_oracle(name: str) -> LocalOracle:
    if name not in ORACLES:
        raise InputError(f"no local oracle named {name!r}; local oracles: {', '.join(ORACLES)}")
    return ORACLES[name]


# --------------------------------------------------------------------------------------------
# what is labelled
# --------------------------------------------------------------------------------------------
@dataclass
class LabelItem:
    """One structure to label: an id, the structure and where it came from (JSON-able)."""

    ident: str
    structure: Any  # a pymatgen Structure
    origin: dict = field(default_factory=dict)


def file_items(pairs: Iterable[tuple[str, object]], source: str) -> list[LabelItem]:
    """``(id, structure)`` pairs from :func:`motif_screen.structures.io.read_structures`."""
    return [LabelItem(str(ident), structure, {"mode": "file", "input": source}) for ident, structure in pairs]


def generated_items(
    model, family: str, n: int, seed: int, steps: int | None = 10, candidates: int | None = None
) -> tuple[list[LabelItem], dict]:
    """Candidates decoded exactly as a campaign's round 0 decodes them, the valid ones to label.

    ``family`` is a generation family (``abx3``/``perovskite``: :func:`motif_screen.generation.families.sample_family`
    with the campaign's decoding settings: ``steps`` flow steps, ``candidates`` per latent, None
    the model's). A campaign with seed ``s`` decodes its round 0 with seed ``1000 s``. Invalid
    structures are not labelled (the campaign's pre-screen rejects them); the tally says how many.
    """
    from motif_screen.generation import families

    if family not in FAMILIES:
        raise InputError(f"unknown generation family {family!r}; families: {', '.join(FAMILIES)}")
    report = families.sample_family(model, n=n, seed=seed, steps=steps, candidates=candidates)
    items = []
    for i, g in enumerate(report.structures):
        if not g.valid:
            continue
        origin = {
            "mode": g.mode,
            "family": family,
            "index": i,
            "seed": seed,
            "flow_steps": steps,
            "decode_candidates": candidates,
            "parents": list(g.parents),
            "model_name": g.model_name,
            "model_version": g.model_version,
            "latent": [round(float(x), 6) for x in g.latent],
            "predictions": {k: [float(m), float(s)] for k, (m, s) in g.predictions.items()},
        }
        items.append(LabelItem(f"{family}-s{seed}-{i:06d}", g.structure, origin))
    tally = {"decoded": len(report), "valid": len(items), **report.failure_counts, "seconds": round(report.seconds, 1)}
    return items, tally


FAMILIES = ("perovskite", "abx3")


# --------------------------------------------------------------------------------------------
# the label file
# --------------------------------------------------------------------------------------------
def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def read_labels(path, *, repair: bool = False) -> list[dict]:
    """Every record of a label file (``.jsonl`` or ``.jsonl.gz``).

    A last line cut short by a kill is dropped (and, with ``repair``, removed from the file so the
    next record starts on a line of its own); any other line that is not a label record is an
    InputError naming the line.
    """
    path = Path(path)
    try:
        with _open_text(path) as handle:
            lines = handle.read().split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read label file {path}: {exc}") from None
    records, last = [], len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    for number, line in enumerate(lines[: last + 1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == last + 1:  # an interrupted write
                if repair:
                    _rewrite(path, lines[:last])
                break
            raise InputError(
                f"{path} line {number} is not JSON: not a label file written by `motif-screen label`"
            ) from None
        if not isinstance(record, dict) or record.get("format") != LABEL_FORMAT or "fingerprint" not in record:
            raise InputError(f"{path} line {number} is not a label record (format {LABEL_FORMAT})")
        records.append(record)
    return records


def _rewrite(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(line + "\n" for line in lines if line.strip()), encoding="utf-8")
    os.replace(tmp, path)


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _record(item: LabelItem, fp: str, oracle: LocalOracle, version: str, settings: dict) -> dict:
    base = {
        "format": LABEL_FORMAT,
        "id": item.ident,
        "fingerprint": fp,
        "formula": item.structure.composition.reduced_formula,
        "nsites": len(item.structure),
        "source": oracle.source,
        "oracle": oracle.name,
        "oracle_version": version,
        "settings": settings,
        "origin": item.origin,
        "structure": item.structure.as_dict(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    start = time.perf_counter()
    try:
        result = oracle.run(item.structure, **settings)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # any oracle failure is a recorded label failure, never a zero
        return {**base, "error": f"{type(exc).__name__}: {exc}"[:500], "seconds": round(time.perf_counter() - start, 2)}
    energy, per_atom = _finite(result.get("energy")), _finite(result.get("energy_per_atom"))
    e_form = _finite(result.get(keys.FORMATION_ENERGY))
    error = None
    if energy is None or per_atom is None:
        error = "the oracle returned a non-finite energy"
    elif e_form is None:
        missing = ", ".join(result.get("missing_references") or []) or "?"
        error = f"no {oracle.name} elemental reference for {missing}: no formation energy"
    return {
        **base,
        "relaxed_structure": result["final_structure"].as_dict(),
        "energy": energy,
        "energy_per_atom": per_atom,
        keys.FORMATION_ENERGY: e_form,
        "converged": bool(result.get("converged")),
        "max_force": _finite(result.get("max_force")),
        "steps": int(result.get("steps", 0)),
        "seconds": round(float(result.get("seconds", time.perf_counter() - start)), 2),
        "error": error,
    }


def check_output(path: Path) -> None:
    if path.suffix == ".gz":
        raise InputError(f"{path}: label runs append to plain JSON lines (.jsonl); gzip the file when the run is done")
    if path.exists() and not path.is_file():
        raise InputError(f"{path} exists and is not a file")
    if not path.parent.is_dir():
        raise InputError(f"the folder of {path} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{path} cannot be written")


def _check_same_run(path: Path, records: list[dict], oracle: LocalOracle, settings: dict) -> None:
    for record in records[:1]:
        if record.get("source") != oracle.source or record.get("settings") != settings:
            raise InputError(
                f"{path} holds labels from {record.get('source')} with settings {record.get('settings')}, "
                f"not {oracle.source} with {settings}: write another file (one file, one oracle and settings)"
            )


def label_structures(
    items: Iterable[LabelItem],
    out,
    oracle: str = keys.SOURCE_CHGNET,
    *,
    settings: dict | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Label every item not yet in ``out`` (a ``.jsonl`` file, appended and flushed per record).

    Returns counts: ``total`` items, ``already`` labelled before, ``duplicates`` (same fingerprint
    as an earlier item), ``labelled`` now, ``failed`` now, ``seconds``.
    """
    from tqdm.auto import tqdm

    path = Path(out)
    check_output(path)
    chosen = local_oracle(oracle)
    settings = {**chosen.defaults, **(settings or {})}
    done = read_labels(path, repair=True) if path.exists() else []
    _check_same_run(path, done, chosen, settings)
    done_fps = {r["fingerprint"] for r in done}
    seen: set[str] = set()
    todo: list[tuple[LabelItem, str]] = []
    counts = {"total": 0, "already": 0, "duplicates": 0, "unfingerprintable": 0, "labelled": 0, "failed": 0}
    for item in items:
        counts["total"] += 1
        try:
            fp = fingerprint(item.structure)
        except InputError:
            counts["unfingerprintable"] += 1
            continue
        if fp in done_fps or fp in seen:
            counts["already" if fp in done_fps else "duplicates"] += 1
            continue
        seen.add(fp)
        todo.append((item, fp))
    if not todo:
        return {**counts, "seconds": 0.0}
    version = chosen.version()
    start = time.perf_counter()
    with (
        path.open("a", encoding="utf-8") as handle,
        tqdm(total=len(todo), desc=f"{chosen.name} labels", unit="structure", disable=not progress) as bar,
    ):
        for item, fp in todo:
            record = _record(item, fp, chosen, version, settings)
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            counts["failed" if record.get("error") else "labelled"] += 1
            bar.update(1)
            bar.set_postfix(failed=counts["failed"], refresh=False)
            if log is not None:
                outcome = record.get("error") or f"{record[keys.FORMATION_ENERGY]:.3f} eV/atom"
                log(f"{item.ident} {record['formula']}: {outcome}")
    return {**counts, "seconds": round(time.perf_counter() - start, 1)}


# --------------------------------------------------------------------------------------------
# labels as training data
# --------------------------------------------------------------------------------------------
def training_rows(records: Iterable[dict], *, allow_mixed_sources: bool = False) -> Iterator[dict]:
    """The records that can train a head: no error, a finite formation energy. One source unless
    ``allow_mixed_sources`` (CHGNet labels never train a model as if they were DFT)."""
    records = list(records)
    sources = sorted({str(r.get("source")) for r in records})
    if len(sources) > 1 and not allow_mixed_sources:
        raise InputError(
            f"labels of mixed sources ({', '.join(sources)}): train on one oracle's labels, "
            "or set allow_mixed_sources: true if you mean it"
        )
    for record in records:
        if failure(record) is None:
            yield record


def failure(record: dict) -> str | None:
    """Why a record cannot train (None: it can): its recorded error, no finite value, or — in files
    labelled before the oracle refused them — a relaxation that ended with atoms fused."""
    if record.get("error"):
        return str(record["error"])
    if _finite(record.get(keys.FORMATION_ENERGY)) is None:
        return "no value"
    relaxed = record.get("relaxed_structure")
    if relaxed:
        from pymatgen.core import Structure

        ratio, pair = closest_pair(Structure.from_dict(relaxed))
        if ratio < FUSED_BOND_FRACTION:
            return f"the relaxation ended with atoms fused ({pair}, {ratio:.2f} of their covalent radii)"
    return None
