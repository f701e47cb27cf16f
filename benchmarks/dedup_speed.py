"""De-duplication speed: 10,000 candidates against 10,000 references with CDVAE's StructureMatcher.

References: the perov-5 structures (val + test, 7,572) topped up to --n-references with strained
and rattled copies. Candidates, built with a fixed seed so that the right answer is known for
most of them:

* ``known``     — rattled (0.05 Å) and strained (±2%) copies of references: should be "known";
* ``swapped``   — references with the A and B cations exchanged: same formula, different
                  structure, so every one costs real ``StructureMatcher`` fits; should be novel;
* ``substituted`` — references with the A cation replaced by another A element of the data set:
                  mostly new formulas, rejected by the formula pre-filter for free;
* ``repeats``   — rattled copies of other candidates: in-batch duplicates.

Timed: ``duplicate_of`` (what ``unique_indices`` runs) over the batch, then ``novel_mask`` of the
unique candidates against the references — exactly what the ``Prescreen`` Firetask does. Also
timed, for the same batch: validity checks and motif labels on 1,000 candidates.

The peer, measured in full on the same data in the same run (wall and CPU time):

* in-batch: pymatgen's own ``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)
  .group_structures(candidates)`` — it reduces every structure once and only compares structures
  whose ``comparator.get_hash(composition)`` agree (``SpeciesComparator``: the fractional, i.e.
  reduced, composition), with ``fit(..., skip_structure_reduction=True)`` inside; a candidate is
  unique when it heads its group (the earliest of the group, as ours keeps);
* novelty: for each unique candidate, ``fit(..., skip_structure_reduction=True)`` against the
  references of the same reduced formula only (the pre-filter ours uses), the first match stops;
  candidate and references reduced once each (references lazily, only formulas hit) with the
  matcher's own reduction (``StructureMatcher._get_reduced_structure``, the call
  ``group_structures`` makes).

``speedup_vs_pymatgen`` = peer total / our total (wall, same run); ``n_unique_disagreements`` /
``n_novel_disagreements`` count candidates whose unique / novel verdict differs between the two
(``fit`` is not symmetric: ours asks ``fit(candidate, earlier head)``, ``group_structures``
``fit(head, candidate)``; ``n_unique_disagreements_fit_direction`` counts the disagreements so explained).
A peer that passes --peer-max-minutes is stopped and only its partial timing is written.
Writes ``benchmarks/results/dedup_speed.json``.

    python benchmarks/dedup_speed.py      # the standard run: 10,000 candidates against 10,000 references
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from results_io import write_result  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]


def _load(data: Path):
    from motif_screen.structures.io import read_structures

    structures = []
    for split in ("val.csv", "test.csv", "train.csv"):
        if (data / split).exists():
            structures.extend(s for _, s in read_structures(data / split))
    return structures


def _rattle(structure, rng, scale=0.05, strain=0.02):
    s = structure.copy()
    s.apply_strain(rng.uniform(-strain, strain, size=3))
    for i in range(len(s)):
        s.translate_sites([i], rng.normal(scale=scale, size=3), frac_coords=False)
    return s


def _cations(structure):
    """Indices of the two cation sites of an ABX3 perovskite cell (the two least electronegative)."""
    order = np.argsort([site.specie.X for site in structure])
    return int(order[0]), int(order[1])


def _swap(structure):
    s = structure.copy()
    a, b = _cations(s)
    ea, eb = s[a].specie, s[b].specie
    s.replace(a, eb)
    s.replace(b, ea)
    return s


def _substitute(structure, rng, pool):
    s = structure.copy()
    a, _ = _cations(s)
    s.replace(a, str(rng.choice(pool)))
    return s


def build(data: Path, n_candidates: int, n_references: int, seed: int):
    rng = np.random.default_rng(seed)
    base = _load(data)
    if not base:
        sys.exit(f"no structures found in {data}")
    references = list(base[:n_references])
    while len(references) < n_references:
        references.append(_rattle(base[rng.integers(len(base))], rng))
    a_pool = sorted({s[_cations(s)[0]].specie.symbol for s in base})
    kinds = {"known": 0.3, "swapped": 0.2, "substituted": 0.3}
    candidates, truth = [], []
    parents = []
    for kind, share in kinds.items():
        for _ in range(int(share * n_candidates)):
            ref = references[rng.integers(len(references))]
            if kind == "known":
                candidates.append(_rattle(ref, rng))
            elif kind == "swapped":
                candidates.append(_swap(ref))
            else:
                candidates.append(_substitute(ref, rng, a_pool))
            truth.append(kind)
            parents.append(None)
    while len(candidates) < n_candidates:
        j = int(rng.integers(len(candidates)))
        candidates.append(_rattle(candidates[j], rng, scale=0.02, strain=0.01))
        truth.append("repeat")
        parents.append(j)
    order = rng.permutation(len(candidates))
    position = {old: new for new, old in enumerate(order)}
    repeat_of = [None if parents[i] is None else position[parents[i]] for i in order]
    return [candidates[i] for i in order], [truth[i] for i in order], repeat_of, references


class PeerTimeout(Exception):
    """The peer ran past --peer-max-minutes."""


def run_peer(candidates, references, max_seconds: float) -> dict:
    """pymatgen alone: ``group_structures`` over the batch, then each unique candidate ``fit`` against
    the references of its reduced formula until the first match. Returns timings and verdicts; on a
    timeout, only what was measured (``completed`` False)."""
    import signal
    from collections import defaultdict

    from motif_screen.structures.dedup import default_matcher

    matcher = default_matcher()
    index = {id(s): i for i, s in enumerate(candidates)}
    out: dict = {"completed": False, "load_start": os.getloadavg()[0]}

    def on_alarm(signum, frame):
        raise PeerTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max_seconds)
    done = 0  # unique candidates checked for novelty
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        groups = matcher.group_structures(candidates)
        out["unique_s"], out["unique_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu_start
        representative = [0] * len(candidates)
        for group in groups:
            head = index[id(group[0])]
            for s in group:
                representative[index[id(s)]] = head
        unique = [i for i, r in enumerate(representative) if r == i]
        out.update(representative=representative, unique=unique)
        print(f"peer group_structures: {len(unique)} unique in {out['unique_s']:.1f} s", flush=True)

        t0, c0 = time.perf_counter(), time.process_time()
        by_formula: dict[str, list[int]] = defaultdict(list)
        for j, r in enumerate(references):
            by_formula[r.composition.reduced_formula].append(j)
        reduced_refs: dict[int, object] = {}

        def reduced(s):
            # private, on purpose: the very reduction group_structures and fit apply, so the peer does pymatgen's work
            return matcher._get_reduced_structure(s, matcher._primitive_cell, niggli=True)

        novel, fits = [], 0
        for i in unique:
            refs = by_formula.get(candidates[i].composition.reduced_formula, [])
            match = False
            if refs:
                c = reduced(candidates[i])
                for j in refs:
                    if j not in reduced_refs:
                        reduced_refs[j] = reduced(references[j])
                    fits += 1
                    if matcher.fit(c, reduced_refs[j], skip_structure_reduction=True):
                        match = True
                        break
            if not match:
                novel.append(i)
            done += 1
        out["novel_s"], out["novel_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        out.update(novel=novel, novelty_fits=fits, references_reduced=len(reduced_refs), completed=True)
        print(f"peer novelty: {len(novel)} novel in {out['novel_s']:.1f} s ({fits} fits)", flush=True)
    except PeerTimeout:
        out["stopped_after_s"] = time.perf_counter() - start
        out["stopped_after_cpu_s"] = time.process_time() - cpu_start
        out["unique_candidates_checked_for_novelty"] = done
        print(f"peer stopped after {out['stopped_after_s']:.0f} s (--peer-max-minutes)", flush=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    out["load_end"] = os.getloadavg()[0]
    return out


def _direction_explained(candidates, ours, peer, disagreeing) -> int:
    """How many of the candidates whose unique verdict differs have a head (ours or the peer's) that
    ``fit`` matches one way and not the other (untimed; plain ``fit``)."""
    from motif_screen.structures.dedup import default_matcher

    matcher = default_matcher()
    count = 0
    for i in disagreeing:
        heads = {ours[i], peer[i]} - {i}
        if any(matcher.fit(candidates[i], candidates[h]) != matcher.fit(candidates[h], candidates[i]) for h in heads):
            count += 1
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "perov_5")
    parser.add_argument("--n-candidates", type=int, default=10_000)
    parser.add_argument("--n-references", type=int, default=10_000)
    parser.add_argument("--peer-max-minutes", type=float, default=40.0,
                        help="stop the pymatgen peer after this long and write only its partial timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dedup_speed.json")
    args = parser.parse_args(argv)

    from motif_screen.structures.dedup import CDVAE_MATCHER_SETTINGS, ReferenceSet, duplicate_of
    from motif_screen.structures.motifs import motif_labels
    from motif_screen.structures.validity import check_validity

    t0 = time.perf_counter()
    candidates, truth, repeat_of, references = build(args.data, args.n_candidates, args.n_references, args.seed)
    build_s = time.perf_counter() - t0
    print(f"built {len(candidates)} candidates, {len(references)} references in {build_s:.1f} s", flush=True)

    load_start = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    representative = duplicate_of(candidates)  # what unique_indices() computes, plus the groups
    unique = [i for i, r in enumerate(representative) if r == i]
    unique_s, unique_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"unique_indices: {len(unique)} unique in {unique_s:.1f} s", flush=True)

    t0, c0 = time.perf_counter(), time.process_time()
    reference_set = ReferenceSet(references)
    found = [reference_set.find(candidates[i]) for i in unique]
    novel_s, novel_cpu = time.perf_counter() - t0, time.process_time() - c0
    load_end = os.getloadavg()[0]
    novel = {i for i, m in zip(unique, found) if m is None}
    print(f"novel_mask: {len(novel)} novel in {novel_s:.1f} s", flush=True)

    by_kind = {k: [i for i, t in enumerate(truth) if t == k] for k in ("known", "swapped", "substituted", "repeat")}
    unique_set = set(unique)
    known_recall = np.mean([representative[i] not in novel for i in by_kind["known"]])
    swapped_novel = np.mean([i in novel for i in by_kind["swapped"] if i in unique_set])
    # a repeat and the candidate it copies must end in the same group (whichever comes first survives)
    repeats_removed = np.mean([representative[i] == representative[repeat_of[i]] for i in by_kind["repeat"]])

    sample = candidates[:1000]
    t0 = time.perf_counter()
    for s in sample:
        check_validity(s)
    validity_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in sample:
        motif_labels(s)
    motif_s = time.perf_counter() - t0
    print(f"validity {validity_s:.1f} s, motifs {motif_s:.1f} s for {len(sample)} candidates", flush=True)

    total_s = unique_s + novel_s
    peer = run_peer(candidates, references, 60 * args.peer_max_minutes)
    peer_metrics: dict = {"peer_completed": int(peer["completed"]),
                          "peer_load_average_at_start": round(peer["load_start"], 2),
                          "peer_load_average_at_end": round(peer["load_end"], 2)}
    if "unique_s" in peer:
        peer_unique = set(peer["unique"])
        peer_metrics.update({
            "peer_unique_s": round(peer["unique_s"], 2),
            "peer_unique_cpu_s": round(peer["unique_cpu_s"], 2),
            "peer_n_unique": len(peer_unique),
            "n_unique_disagreements": sum((i in unique_set) != (i in peer_unique) for i in range(len(candidates))),
            # StructureMatcher.fit is not symmetric: ours asks fit(candidate, earlier head), group_structures
            # fit(head, candidate); a disagreement is "fit direction" when fit answers differently both ways
            "n_unique_disagreements_fit_direction": _direction_explained(
                candidates, representative, peer["representative"], unique_set ^ peer_unique),
        })
    if peer["completed"]:
        peer_novel = set(peer["novel"])
        peer_total_s = peer["unique_s"] + peer["novel_s"]
        peer_metrics.update({
            "peer_novel_s": round(peer["novel_s"], 2),
            "peer_novel_cpu_s": round(peer["novel_cpu_s"], 2),
            "peer_total_s": round(peer_total_s, 2),
            "peer_total_cpu_s": round(peer["unique_cpu_s"] + peer["novel_cpu_s"], 2),
            "peer_n_novel": len(peer_novel),
            "peer_novelty_fit_calls": peer["novelty_fits"],
            "peer_references_reduced": peer["references_reduced"],
            "n_novel_disagreements": sum((i in novel) != (i in peer_novel) for i in range(len(candidates))),
            "speedup_vs_pymatgen": round(peer_total_s / total_s, 2),
            "speedup_vs_pymatgen_cpu": round((peer["unique_cpu_s"] + peer["novel_cpu_s"])
                                             / (unique_cpu + novel_cpu), 2),
        })
    else:  # stopped: what was measured, never an extrapolation
        peer_metrics.update({
            "peer_stopped_after_s": round(peer["stopped_after_s"], 1),
            "peer_stopped_after_cpu_s": round(peer["stopped_after_cpu_s"], 1),
            "peer_unique_candidates_checked_for_novelty": peer["unique_candidates_checked_for_novelty"],
        })
    result = {
        "name": "dedup_speed",
        "command": "python benchmarks/dedup_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": {
            "references": f"{args.data} (val+test perov-5 structures, topped up with rattled copies)",
            "n_references": len(references),
            "n_candidates": len(candidates),
            "candidate_mix": {k: len(v) for k, v in by_kind.items()},
            "matcher": CDVAE_MATCHER_SETTINGS,
            "machine": "2 CPU cores shared with other jobs: wall time depends on the load (see load_average_*); "
                       "CPU time much less",
            "peer": "pymatgen alone, same candidates and references, same run, after ours: "
                    "StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3).group_structures(candidates) for the in-batch "
                    "step (pymatgen pre-groups by comparator.get_hash(composition) = the fractional composition; a "
                    "candidate is unique when it heads its group), then for each unique candidate "
                    "fit(candidate, reference, skip_structure_reduction=True) against the references of the same "
                    "reduced formula only (ours' pre-filter), stopping at the first match; each structure reduced "
                    "once with the matcher's own _get_reduced_structure. peer_*_s wall, peer_*_cpu_s process CPU; "
                    "speedup_vs_pymatgen = peer_total_s / total_dedup_s (speedup_vs_pymatgen_cpu: CPU times); "
                    "n_unique_disagreements / n_novel_disagreements: candidates whose unique / novel verdict "
                    "(novel = unique and matching no reference) differs from ours; "
                    "n_unique_disagreements_fit_direction of them have a head that fit matches one way and not the "
                    "other (fit is not symmetric: ours asks fit(candidate, earlier head), group_structures "
                    f"fit(head, candidate)). Peer limit {args.peer_max_minutes} "
                    "min (peer_completed 0: stopped, only the partial timing written)",
        },
        "metrics": {
            "unique_s": round(unique_s, 2),
            "novel_s": round(novel_s, 2),
            "total_dedup_s": round(total_s, 2),
            "total_dedup_cpu_s": round(unique_cpu + novel_cpu, 2),
            "unique_cpu_s": round(unique_cpu, 2),
            "novel_cpu_s": round(novel_cpu, 2),
            "load_average_at_start": round(load_start, 2),
            "load_average_at_end": round(load_end, 2),
            "candidates_per_s": round(len(candidates) / total_s, 1),
            "n_unique": len(unique),
            "n_novel": len(novel),
            "known_copies_flagged_known": round(float(known_recall), 4),
            "swapped_flagged_novel": round(float(swapped_novel), 4),
            "repeats_removed": round(float(repeats_removed), 4),
            **peer_metrics,
            "validity_per_s": round(len(sample) / validity_s, 1),
            "motif_labels_per_s": round(len(sample) / motif_s, 1),
        },
        "anchors": {
            "target_total_dedup_s": {"value": 60, "source": "issue 4: 10,000 against 10,000 well under a minute"},
            "matcher_settings": {"value": "stol=0.5, angle_tol=10, ltol=0.3",
                                 "source": "CDVAE (Xie et al. 2022) evaluation code"},
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_result(args.out, result)
    print(json.dumps(result["metrics"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
