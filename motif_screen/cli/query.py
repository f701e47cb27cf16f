"""``motif-screen query``: screened candidates from MongoDB as a table, JSON, CSV or CIF files."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from motif_screen import keys
from motif_screen.cli.common import add_db_options, connect_from_args
from motif_screen.db.queries import PROPERTY_OPTIONS, SORT_FIELDS, CandidateQuery, candidate_row, parse_range
from motif_screen.messages import shorten
from motif_screen.safe_paths import OutputFolder, file_name
from motif_screen.structures.io import structure_from_any, write_cifs
from motif_screen.structures.prototypes import PROTOTYPES

INDEX_NAME = "index.csv"

HELP = "find candidates by campaign, status, property ranges, elements, motif, model version"
DESCRIPTION = """\
Find candidates in MongoDB. Filters combine with AND; property ranges are LOW:HIGH, LOW: or :HIGH
and apply to the model's predictions (default) or, with --on oracle, to the oracle's values
(DFT via atomate, or the CHGNet stand-in; the `oracle_source` column says which).

examples:
  motif-screen query --campaign demo --status computed --band-gap 1.0:3.0
  motif-screen query --elements Ti O --motif Ti:octahedral:O --format csv > ti_o.csv
  motif-screen query --campaign demo --on oracle --formation-energy :-0.5 --format cif --out hits/
"""


def add_arguments(parser) -> None:
    parser.add_argument("--campaign", help="campaign name")
    parser.add_argument(
        "--status",
        nargs="+",
        default=[],
        choices=keys.CANDIDATE_STATUSES,
        metavar="STATUS",
        help=f"one or more of: {', '.join(keys.CANDIDATE_STATUSES)}",
    )
    for option, prop in PROPERTY_OPTIONS.items():
        parser.add_argument(f"--{option}", dest=f"range_{prop}", metavar="LOW:HIGH", help=f"range of {prop}")
    parser.add_argument(
        "--on",
        choices=("predicted", "oracle"),
        default="predicted",
        help="apply property ranges to predictions or to oracle results (default: predicted)",
    )
    parser.add_argument("--elements", nargs="+", default=[], metavar="EL", help="candidates containing all of these")
    parser.add_argument("--formula", help="reduced formula, e.g. SrTiO3")
    parser.add_argument("--motif", help="every site of the element has this environment, e.g. Ti:octahedral:O")
    parser.add_argument(
        "--prototype",
        choices=PROTOTYPES,
        help="A B X3 candidates whose cell is this prototype, read from its motifs: perovskite (B octahedral, A "
        "with >= 8 X), perovskite_inverted (A and B exchanged) or abx3_other",
    )
    parser.add_argument("--model-version", type=int, help="proposed by this model version")
    parser.add_argument("--round", type=int, help="campaign round")
    parser.add_argument("--sort", choices=SORT_FIELDS, default="acquisition", help="sort key (default: acquisition)")
    parser.add_argument("--ascending", action="store_true", help="sort ascending (default: descending)")
    parser.add_argument("--limit", type=int, default=50, help="at most this many rows (default: 50)")
    parser.add_argument("--format", choices=("table", "json", "csv", "cif"), default="table")
    parser.add_argument(
        "--out",
        type=Path,
        help="with --format cif: folder for the CIF files <formula>_<id>.cif "
        "(made safe from the stored formula) and index.csv",
    )
    add_db_options(parser)


def build_query(args) -> CandidateQuery:
    ranges = {}
    for option, prop in PROPERTY_OPTIONS.items():
        text = getattr(args, f"range_{prop}")
        if text is not None:
            ranges[prop] = parse_range(text, option)
    return CandidateQuery(
        campaign=args.campaign,
        statuses=list(args.status),
        ranges=ranges,
        on=args.on,
        elements=list(args.elements),
        formula=args.formula,
        motif=args.motif,
        prototype=args.prototype,
        model_version=args.model_version,
        round=args.round,
        sort=args.sort,
        descending=not args.ascending,
        limit=args.limit,
    ).validate()


def _table(rows: list[dict]) -> str:
    if not rows:
        return "no candidates match"
    present = [k for k in rows[0] if any(r[k] not in (None, "") for r in rows)]
    cols = [c for c in present if not c.endswith("_std") and c not in ("campaign", "status_reason")]

    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))

    widths = {c: max(len(c), *(len(fmt(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(fmt(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def export_cifs(docs, rows, out: Path) -> list[Path]:
    """One CIF per candidate, ``<formula>_<id>.cif``, and ``index.csv`` (the rows, with the file
    of each) inside ``out`` and nowhere else: names are made safe from the stored formula,
    nothing in ``out`` is followed, and every candidate's structure is read before the first
    file is written, so a broken document leaves no partial export."""
    structures = [structure_from_any(doc.structure, f"candidate {doc.id} ({shorten(doc.formula, 40)})") for doc in docs]
    names = [file_name(doc.formula, doc.id) for doc in docs]
    with OutputFolder(out) as folder:
        written = write_cifs(list(zip(names, structures)), folder)
        folder.write(INDEX_NAME, _csv([{**row, "file": path.name} for row, path in zip(rows, written)]))
    return written


def run(args) -> int:
    from motif_screen.db.queries import find_candidates
    from motif_screen.errors import InputError

    query = build_query(args)  # validate before touching the database
    if args.format == "cif" and args.out is None:
        raise InputError("--format cif needs --out FOLDER")
    conn, _ = connect_from_args(args, readonly=True)
    docs = find_candidates(query)
    rows = [candidate_row(d) for d in docs]
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=2, default=str)
        print()
    elif args.format == "csv":
        sys.stdout.write(_csv(rows))
    elif args.format == "cif":
        print(f"wrote {len(export_cifs(docs, rows, args.out))} CIF files and {INDEX_NAME} to {args.out}")
    else:
        print(_table(rows))
    return 0
