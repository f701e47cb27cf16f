"""Valid, unique structures per second: the autoencoder vs PyXtal random symmetric generation, same run.

    python benchmarks/generation_speed.py --n 1000 --steps 10 --threads 1 --pyxtal-seconds 120   # the standard run
    python benchmarks/generation_speed.py [--checkpoint CKPT] [--repeats 3]

Ours: prior samples from the shipped perov-5 autoencoder, timed end to end (decoding, the library's
validity report, CDVAE validity, in-batch de-duplication with motif_screen.structures.dedup); the
same run is repeated --repeats times and the median time is used. The runs of ours are interleaved
with slices of both PyXtal runs, so that all three see the same load on a shared machine.
PyXtal: for the compositions of our unique valid samples (cycled), ``pyxtal.from_random`` with a
random space group per attempt; its output goes through the same validity and de-duplication. Two
PyXtal runs in the same process, each for --pyxtal-seconds in all (--repeats slices):

* compatible groups (the fair peer, ``speedup_vs_pyxtal``): each composition's space groups are
  found once, before generation starts, by ``pyxtal.symmetry.Group(sg).check_compatible(counts)``
  (True when some combination of Wyckoff positions holds the atom counts), and each attempt draws
  uniformly among them. That precomputation is timed (``pyxtal_compatible_groups_precompute_s``)
  and counted in PyXtal's time: a user pays it once per composition;
* any group (``speedup_vs_pyxtal_any_group``, the earlier protocol): a uniform draw from 1-230 per
  attempt, most of them incompatible with a 5-atom composition and rejected by PyXtal.

Both single process, on the same (possibly shared) 2 cores.

Why the first attempt (``--n 1000 --steps 10``) was killed at 7.8 GB: not the decoder (1,000
samples decode in 5 s at 0.5 GB) but de-duplication. The first shipped model decoded many elemental
cells (Sn7, Nb7, Pt7); for two 7-atom one-element cells the sure-mismatch shortcut of
motif_screen.structures.dedup enumerated 7! = 5,040 site bijections x 48 lattice mappings and
allocated ~20 GB (~50 s per pair; StructureMatcher.fit takes 0.04 s). The library now caps that
enumeration at 5! (``dedup.MAX_ASSIGNMENTS``); every answer is unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from results_io import (  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
    add_model_options,
    checkpoint_provenance,
    load_model,
    write_result,
)

ROOT = Path(__file__).resolve().parents[1]
NAME = "generation_speed"


def _valid_unique(structures):
    from motif_screen.generation.metrics import cdvae_validity
    from motif_screen.structures.dedup import unique_indices

    valid = [s for s in structures if all(cdvae_validity(s))]
    return valid, ([valid[i] for i in unique_indices(valid)] if valid else [])


def _species_counts(comp):
    return [str(el) for el in comp.elements], [int(comp[el]) for el in comp.elements]


def compatible_groups(compositions):
    """({composition index: [space groups PyXtal can fill with its atom counts]}, seconds): the 230
    ``pyxtal.symmetry.Group`` objects built once, then ``check_compatible(counts)`` per composition."""
    from pyxtal.symmetry import Group

    start = time.time()
    groups = [Group(number) for number in range(1, 231)]
    found = {}
    for k, comp in enumerate(compositions):
        counts = _species_counts(comp)[1]
        found[k] = [g.number for g in groups if g.check_compatible(counts)[0]]
    return found, time.time() - start


def run_pyxtal(compositions, seconds: float, seed: int, groups=None):
    """Random symmetric crystals for the given compositions until the time is up: the space group of
    each attempt drawn uniformly from ``groups[k]`` for composition k, or from 1-230 when ``groups`` is
    None. Compositions without a compatible group are skipped (none in perov-5)."""
    import random
    import warnings

    from pyxtal import pyxtal

    rng = random.Random(seed)
    order = [k for k in range(len(compositions)) if groups is None or groups[k]]
    made, attempts = [], 0
    start = time.time()
    while order and time.time() - start < seconds:
        k = order[attempts % len(order)]
        attempts += 1
        species, counts = _species_counts(compositions[k])
        group = rng.randint(1, 230) if groups is None else rng.choice(groups[k])
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(3, group, species, counts, random_state=rng.randint(0, 2**31 - 1))
            if crystal.valid:
                made.append(crystal.to_pymatgen())
        except Exception:  # incompatible composition / space group: counts as an attempt
            pass
    return made, attempts, time.time() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="our samples")
    parser.add_argument("--pyxtal-seconds", type=float, default=120.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of our run; the median is reported")
    add_model_options(parser, NAME)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.n < 1:
        parser.error("--n and --repeats must be at least 1")

    import resource

    from motif_screen.generation import sample_prior

    model = load_model(args)
    # warm-up: lazy imports (StructureMatcher pulls in scipy.optimize), allocator; PyXtal is imported
    # before its clock too
    warm = sample_prior(model, 8, seed=args.seed + 99, steps=args.steps, candidates=args.candidates)
    _valid_unique([g.structure for g in warm])

    # ours: the same --n samples (same seed, same structures) --repeats times, median time. The runs are
    # interleaved with slices of both PyXtal runs (--pyxtal-seconds split evenly), so that on a shared
    # machine all three see the same load; a first run of ours gives PyXtal its compositions.
    def ours_run():
        t0 = time.time()
        report = sample_prior(model, args.n, seed=args.seed, steps=args.steps, candidates=args.candidates)
        t_decode = time.time() - t0
        valid, unique = _valid_unique([g.structure for g in report])
        return report, valid, unique, (time.time() - t0, t_decode)

    report, valid, unique, first = ours_run()
    compositions = sorted({s.composition for s in unique}, key=lambda c: c.formula)[:200] or [valid[0].composition]
    import pyxtal.symmetry  # noqa: F401  (imported before either PyXtal clock starts)

    groups, precompute_s = compatible_groups(compositions)
    print(f"compatible space groups of {len(compositions)} compositions in {precompute_s:.2f} s", flush=True)
    made = {"compatible": [], "any": []}
    attempts = {"compatible": 0, "any": 0}
    generation_s = {"compatible": 0.0, "any": 0.0}
    runs = [first]
    for r in range(args.repeats):
        for mode, allowed in (("compatible", groups), ("any", None)):
            got, tried, seconds = run_pyxtal(compositions, args.pyxtal_seconds / args.repeats, args.seed + r,
                                             allowed)
            made[mode] += got
            attempts[mode] += tried
            generation_s[mode] += seconds
        if r < args.repeats - 1:
            runs.append(ours_run()[3])
    ours_s, t_decode = sorted(runs)[len(runs) // 2]
    ours_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    ours_rate = len(unique) / ours_s

    def pyxtal_result(mode: str, extra_s: float) -> dict:
        """PyXtal's rates over all its slices; ``extra_s`` (the precomputation) counted in its time."""
        t1 = time.time()
        px_valid, px_unique = _valid_unique(made[mode])
        total_s = extra_s + generation_s[mode] + (time.time() - t1)
        return {"valid_unique_per_s": len(px_unique) / total_s,
                "valid_per_s_before_dedup": len(px_valid) / (extra_s + generation_s[mode]),
                "attempts": attempts[mode], "generated": len(made[mode]), "valid": len(px_valid),
                "valid_unique": len(px_unique), "generation_seconds": generation_s[mode], "seconds": total_s}

    px = pyxtal_result("compatible", precompute_s)
    print(f"pyxtal, compatible groups: {px['valid_unique_per_s']:.2f} valid unique/s", flush=True)
    px_any = pyxtal_result("any", 0.0)
    print(f"pyxtal, any group: {px_any['valid_unique_per_s']:.2f} valid unique/s", flush=True)
    px_rate, px_any_rate = px["valid_unique_per_s"], px_any["valid_unique_per_s"]
    n_groups = [len(g) for g in groups.values()]
    precompute_share = precompute_s / px["seconds"]

    metrics = {
        "ours_valid_unique_per_s": ours_rate,
        "ours_valid_per_s_before_dedup": len(valid) / t_decode,
        "ours_samples": len(report),
        "ours_valid": len(valid),
        "ours_valid_unique": len(unique),
        "ours_seconds": ours_s,
        "ours_seconds_fastest": min(r[0] for r in runs),
        "ours_seconds_slowest": max(r[0] for r in runs),
        "ours_repeats": len(runs),
        "ours_decode_and_check_seconds": t_decode,
        "ours_validity_and_dedup_seconds": ours_s - t_decode,
        "ours_peak_rss_gb": ours_rss_gb,
        "compositions": len(compositions),
        **{f"pyxtal_{k}": v for k, v in px.items()},
        "pyxtal_valid_unique_per_s_without_precompute": px["valid_unique"] / (px["seconds"] - precompute_s),
        "pyxtal_compatible_groups_precompute_s": precompute_s,
        "pyxtal_compatible_groups_precompute_share": precompute_share,
        "pyxtal_compatible_groups_per_composition_mean": sum(n_groups) / len(n_groups),
        "pyxtal_compatible_groups_per_composition_min": min(n_groups),
        "pyxtal_compatible_groups_per_composition_max": max(n_groups),
        "pyxtal_compositions_without_compatible_group": sum(1 for n in n_groups if n == 0),
        **{f"pyxtal_any_group_{k}": v for k, v in px_any.items()},
        "speedup_vs_pyxtal": ours_rate / px_rate if px_rate > 0 else None,
        "speedup_vs_pyxtal_any_group": ours_rate / px_any_rate if px_any_rate > 0 else None,
        "torch_threads": args.threads,
        "flow_steps": args.steps or model.decoder.config.flow_steps,
        "candidates": args.candidates or model.decoder.config.candidates,
    }
    result = {
        "name": NAME,
        "command": " ".join(["python", "benchmarks/generation_speed.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "data": {
            "ours": "prior samples of the autoencoder named by checkpoint; time includes decoding, validity checks "
                    "and in-batch StructureMatcher de-duplication",
            "checkpoint": checkpoint_provenance(args.checkpoint),
            "pyxtal": f"pyxtal.from_random(3, space group, species, counts) for the {len(compositions)} compositions "
                      "of our unique valid samples, cycled, for --pyxtal-seconds per run; same validity (CDVAE: "
                      "distances > 0.5 Å, SMACT) and de-duplication. Two runs in this process, the same seconds each",
            "pyxtal_compatible_groups": "speedup_vs_pyxtal and pyxtal_* (the headline peer): each attempt draws its "
                                        "space group uniformly among those compatible with the composition, found "
                                        "once per composition with pyxtal.symmetry.Group(sg).check_compatible(counts) "
                                        "(230 Group objects built once); that precomputation "
                                        f"({precompute_s:.2f} s, {100 * precompute_share:.1f}% of PyXtal's time"
                                        f"{': it dominates' if precompute_share > 0.5 else ''}) IS counted in "
                                        "pyxtal_seconds and pyxtal_valid_unique_per_s (a user pays it once per "
                                        "composition); pyxtal_valid_unique_per_s_without_precompute leaves it out",
            "pyxtal_any_group": "speedup_vs_pyxtal_any_group and pyxtal_any_group_*: the earlier protocol, a space "
                                "group drawn uniformly from 1-230 per attempt (incompatible ones rejected by PyXtal, "
                                "each a wasted attempt)",
            "machine": f"2 CPU cores, {args.threads} torch thread(s); timings are wall-clock, one process",
        },
        "metrics": metrics,
        "anchors": {
            "target_speedup": {"value": 30.0, "source": "issue 4: >= 30x PyXtal's rate"},
            "pyxtal_seconds_per_structure_per_core": {
                "value": 0.17,
                "source": "DESIGN.md (PyXtal random symmetric generation ~0.17 s per structure per core)"},
            "pyxtal_valid_per_s_perov5_measured_here": {"value": 3.5, "source": "DESIGN.md, measured on this machine"},
        },
    }
    write_result(args.out, result)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
