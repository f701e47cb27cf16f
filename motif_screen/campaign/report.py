"""The campaign report: PNG plots people look at, CSV and CIF files of the hits.

funnel.png      per round: generated -> valid -> unique -> novel -> screened -> submitted -> hits
parity.png      predicted (at screening time, ± 1σ) against the oracle, acquisition picks vs controls
latent_map.png  the candidates' latent vectors projected to 2D (PCA), coloured by prediction
hits.csv, hits/ the hits with predictions and oracle values, one CIF each
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from motif_screen import keys
from motif_screen.db.queries import candidate_row
from motif_screen.db.repository import Repository
from motif_screen.plotting import draw_map, pca_2d
from motif_screen.safe_paths import OutputFolder, file_name, replaced_file
from motif_screen.structures.io import structure_from_any, write_cifs

FUNNEL_STAGES = ("generated", "valid", "unique", "novel", "screened", "submitted", "computed", "hits")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_funnel(repo: Repository, spec, path: Path) -> Path:
    plt = _pyplot()
    records = repo.rounds(spec.name)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(records))
    x = np.arange(len(FUNNEL_STAGES))
    for k, rec in enumerate(records):
        values = [getattr(rec, s) or 0 for s in FUNNEL_STAGES]
        bars = ax.bar(x + k * width, values, width, label=f"round {rec.round} (model v{rec.model_version})")
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x + width * (len(records) - 1) / 2, FUNNEL_STAGES)
    ax.set_yscale("symlog")
    ax.set_ylabel("candidates")
    ax.set_title(f"{spec.name}: the funnel per round")
    ax.legend()
    fig.tight_layout()
    with replaced_file(path, "plot") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def plot_parity(repo: Repository, spec, path: Path) -> Path:
    plt = _pyplot()
    prop = spec.target.learned_property  # what the model predicted at screening time
    docs = [
        d for d in repo.computed(spec.name) if prop in (d.predictions or {}) and (d.oracle or {}).get(prop) is not None
    ]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for selection, marker in ((keys.SELECTED_BY_ACQUISITION, "o"), (keys.SELECTED_AS_CONTROL, "s")):
        sub = [d for d in docs if d.selection == selection]
        if not sub:
            continue
        pred = np.array([d.predictions[prop].mean for d in sub])
        err = np.array([d.predictions[prop].std or 0.0 for d in sub])
        orac = np.array([d.oracle[prop] for d in sub])
        ax.errorbar(orac, pred, yerr=err, fmt=marker, capsize=2, label=f"{selection} ({len(sub)})")
    if docs:
        values = [d.oracle[prop] for d in docs] + [d.predictions[prop].mean for d in docs]
        lo, hi = min(values), max(values)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        if prop == spec.target.property:
            for bound in (spec.target.lower, spec.target.upper):
                if bound is not None:
                    ax.axvline(bound, color="tab:red", lw=0.8, ls=":")
    source = docs[0].oracle.get("source", "?") if docs else "?"
    ax.set_xlabel(f"oracle {prop} ({source})")
    ax.set_ylabel(f"predicted {prop} (±1σ) at screening time")
    ax.set_title("predicted vs oracle" if docs else "no computed candidates yet")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with replaced_file(path, "plot") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def plot_latent_map(repo: Repository, spec, path: Path) -> Path:
    prop = spec.target.learned_property
    docs = [d for d in repo.candidates(spec.name, "latent", "predictions", "status") if d.latent]
    if len(docs) < 2:
        return _empty_plot(path, "too few candidates for a latent map")
    xy, explained = pca_2d([d.latent for d in docs])
    values = [d.predictions[prop].mean if prop in (d.predictions or {}) else float("nan") for d in docs]
    sent = [d.status in (keys.STATUS_COMPUTED, keys.STATUS_FAILED) for d in docs]
    with replaced_file(path, "plot") as tmp:
        draw_map(
            xy,
            values,
            tmp,
            f"predicted {prop}",
            f"{spec.name}: the candidates' latent space",
            explained,
            highlight=sent,
            highlight_label="sent to the oracle",
        )
    return path


def _empty_plot(path: Path, message: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    with replaced_file(path, "plot") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def write_hits(repo: Repository, spec, folder: Path) -> list[Path]:
    """hits.csv and one CIF per hit in hits/, written only inside ``folder`` (names made safe from the
    stored formula and id, no link followed), and only once every structure has been read."""
    prop = spec.target.property
    hits = [d for d in repo.computed(spec.name) if spec.target.is_hit((d.oracle or {}).get(prop))]
    structures = [structure_from_any(d.structure, f"candidate {d.id}") for d in hits]
    with OutputFolder(folder, "report folder") as out:
        written = write_cifs([(file_name(d.formula, d.id), s) for d, s in zip(hits, structures)], out.subfolder("hits"))
        rows = [{**candidate_row(d), "cif": f"hits/{path.name}"} for d, path in zip(hits, written)]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["id", "formula", f"oracle_{prop}", "cif"])
        writer.writeheader()
        writer.writerows(rows)
        csv_path = out.write("hits.csv", text.getvalue())
    return [csv_path, folder / "hits"]


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a hit rate (sensible at 0 and n hits, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * float(np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def acquisition_vs_random(repo: Repository, spec, seed: int = 0, draws: int = 10_000, is_hit=None) -> dict:
    """Hits per oracle call of the acquisition picks and of the random controls of the whole
    campaign, with 95% intervals, and their ratio (the discovery acceleration) with a bootstrap
    interval. ``verdict`` says plainly when the controls are too few to tell.

    A call counts once it has ended: a failed calculation is a call that found nothing; a computed
    candidate still awaiting references (no value yet) is not counted until its value is known.
    ``is_hit``: value -> bool (default: the target's own hit rule)."""
    prop = spec.target.property
    is_hit = is_hit or spec.target.is_hit

    def value(d):
        return (d.oracle or {}).get(prop) if d.status == keys.STATUS_COMPUTED else None

    calls = [
        d
        for d in repo.oracle_calls_ended(spec.name)
        if d.selection in keys.SELECTIONS and (d.status == keys.STATUS_FAILED or value(d) is not None)
    ]
    groups = {
        sel: np.array([value(d) is not None and is_hit(value(d)) for d in calls if d.selection == sel], dtype=float)
        for sel in keys.SELECTIONS
    }
    acq, ctl = groups[keys.SELECTED_BY_ACQUISITION], groups[keys.SELECTED_AS_CONTROL]
    out: dict = {
        "acquisition_calls": len(acq),
        "acquisition_hits": int(acq.sum()),
        "random_calls": len(ctl),
        "random_hits": int(ctl.sum()),
    }
    for name, arr in (("acquisition", acq), ("random", ctl)):
        out[f"{name}_rate"] = float(arr.mean()) if len(arr) else None
        out[f"{name}_rate_interval"] = wilson_interval(int(arr.sum()), len(arr))
    out["acceleration"], out["acceleration_interval"] = None, None
    if len(acq) and len(ctl) and ctl.sum() > 0:
        rng = np.random.default_rng(seed)
        a = rng.choice(acq, size=(draws, len(acq))).mean(1)
        c = rng.choice(ctl, size=(draws, len(ctl))).mean(1)
        ratios = a[c > 0] / c[c > 0]
        out["acceleration"] = float(acq.mean() / ctl.mean())
        out["acceleration_interval"] = (float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5)))
    if len(ctl) < 10 or out["acceleration_interval"] is None:
        out["verdict"] = (
            f"{len(ctl)} random controls ({int(ctl.sum())} hits): too few to tell whether the acquisition beats "
            "random picks; raise the budget or control_fraction to measure it"
        )
    else:
        low, high = out["acceleration_interval"]
        out["verdict"] = (
            "acquisition beats random picks"
            if low > 1
            else "random picks do as well as the acquisition"
            if high < 1
            else "no measurable difference from random picks at this budget"
        )
    return out


def summary_text(stats: dict, spec, prototypes: dict[str, int] | None = None) -> str:
    """The report's plain-text summary: acquisition against random, with intervals and a verdict;
    then, when the campaign proposed A B X3 cells, how many of them decoded to which prototype."""

    def rate(name: str) -> str:
        low, high = stats[f"{name}_rate_interval"]
        value = stats[f"{name}_rate"]
        shown = "-" if value is None else f"{value:.2f}"
        calls, hits = stats[f"{name}_calls"], stats[f"{name}_hits"]
        return f"{hits} hits / {calls} oracle calls = {shown} (95% interval {low:.2f}-{high:.2f})"

    if stats["acceleration"] is None:
        accel = "undefined (no random control was a hit)"
    else:
        low, high = stats["acceleration_interval"]
        accel = f"{stats['acceleration']:.2f} (95% bootstrap interval {low:.2f}-{high:.2f})"
    bounds = [
        f"<= {spec.target.upper:g}" if spec.target.upper is not None else "",
        f">= {spec.target.lower:g}" if spec.target.lower is not None else "",
    ]
    return (
        f"campaign {spec.name}: {spec.target.goal} {spec.target.property}; "
        f"a hit is {' and '.join(b for b in bounds if b)}\n"
        f"acquisition picks: {rate('acquisition')}\n"
        f"random controls:   {rate('random')}\n"
        f"discovery acceleration: {accel}\n"
        f"verdict: {stats['verdict']}\n"
    ) + _prototype_line(prototypes or {})


def _prototype_line(counts: dict[str, int]) -> str:
    if not sum(counts.values()):
        return ""
    shown = ", ".join(f"{name} {n}" for name, n in counts.items())
    return f"decoded A B X3 cells (valid candidates) by prototype: {shown} (motif-screen query --prototype NAME)\n"


def write_report(repo: Repository, spec, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        plot_funnel(repo, spec, folder / "funnel.png"),
        plot_parity(repo, spec, folder / "parity.png"),
        plot_latent_map(repo, spec, folder / "latent_map.png"),
        *write_hits(repo, spec, folder),
    ]
    with OutputFolder(folder, "report folder") as out:
        stats = acquisition_vs_random(repo, spec)
        files.append(out.write("summary.txt", summary_text(stats, spec, repo.cell_prototype_counts(spec.name))))
    return files
