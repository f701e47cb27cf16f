"""``motif-screen status``: per campaign, the funnel by status and per round, and the Fireworks."""

from __future__ import annotations

import json

from motif_screen import keys
from motif_screen.cli.common import add_db_options, connect_from_args, settings_from_args

HELP = "funnel counts per campaign and round (generated -> screened -> submitted -> hits)"
ROUND_COLUMNS = ("round", "model_version", "generated", "valid", "unique", "novel", "screened", "submitted",
                 "computed", "hits", "hit_rate", "random_hit_rate", "acceleration")


def add_arguments(parser) -> None:
    parser.add_argument("--campaign", help="only this campaign")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--restore-backup", action="store_true",
                        help="embedded store only: put the previous version (<store>.bak) back in place of a broken "
                             "store; the broken file is kept beside it as <store>.broken-<time>")
    add_db_options(parser)


def collect_status(campaign: str | None = None) -> dict:
    """Everything `status` shows, as plain data (tests and the run report use it too)."""
    from motif_screen.db.documents import Campaign, RoundRecord
    from motif_screen.db.queries import funnel_counts, validate_name

    if campaign:
        validate_name(campaign, "campaign")
    counts = funnel_counts(campaign)
    campaigns = Campaign.objects(name=campaign) if campaign else Campaign.objects.order_by("created")
    names = [c.name for c in campaigns] + sorted(set(counts) - {c.name for c in campaigns})
    info = {c.name: c for c in campaigns}
    out = {}
    for name in names:
        c = info.get(name)
        rounds = [{k: getattr(r, k) for k in ROUND_COLUMNS}
                  for r in RoundRecord.objects(campaign=name).order_by("round")]
        out[name] = {
            "status": c.status if c else "unknown (no Campaign document)",
            "target": c.target.to_mongo().to_dict() if c and c.target else None,
            "budget": c.budget if c else None,
            "rounds_planned": c.rounds if c else None,
            "oracle": c.oracle if c else None,
            "candidates": counts.get(name, {}).get("total", {s: 0 for s in keys.CANDIDATE_STATUSES}),
            "candidates_per_round": {str(k): v for k, v in sorted(counts.get(name, {}).get("rounds", {}).items(),
                                                                   key=lambda kv: (kv[0] is None, kv[0]))},
            "rounds": rounds,
        }
    return out


def fireworks_states(conn, settings) -> dict[str, int] | None:
    """Fireworks per state from the LaunchPad of the same setup (None when there is none)."""
    from motif_screen.db import launchpad_for
    from motif_screen.errors import ConfigError

    try:
        lpad = launchpad_for(conn, settings.config_dir / "my_launchpad.yaml")
    except ConfigError:
        return None
    states: dict[str, int] = {}
    for doc in lpad.fireworks.find({}, {"state": 1}):
        states[doc["state"]] = states.get(doc["state"], 0) + 1
    return states


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _hit_text(target: dict) -> str:
    lower, upper = target.get("lower"), target.get("upper")
    if lower is not None and upper is not None:
        return f"{lower:g} <= value <= {upper:g}"
    return f"value >= {lower:g}" if lower is not None else (f"value <= {upper:g}" if upper is not None else "?")


def render(status: dict, fw_states: dict | None) -> str:
    if not status:
        return "no campaigns yet: `motif-screen run` starts the demo campaign"
    lines = []
    for name, s in status.items():
        target = s["target"] or {}
        lines.append(f"campaign {name}  [{s['status']}]  target: {target.get('goal', '?')} "
                     f"{target.get('property', '?')} (hit: {_hit_text(target)})  "
                     f"budget {_fmt(s['budget'])}  oracle {_fmt(s['oracle'])}")
        lines.append("  candidates: " + "  ".join(f"{k} {v}" for k, v in s["candidates"].items()))
        if s["rounds"]:
            widths = [max(len(c), 8) for c in ROUND_COLUMNS]
            lines.append("  " + " ".join(c.rjust(w) for c, w in zip(ROUND_COLUMNS, widths)))
            for r in s["rounds"]:
                lines.append("  " + " ".join(_fmt(r[c]).rjust(w) for c, w in zip(ROUND_COLUMNS, widths)))
        else:
            for rnd, per in s["candidates_per_round"].items():
                lines.append(f"  round {rnd}: " + "  ".join(f"{k} {v}" for k, v in per.items() if v))
    if fw_states is not None:
        lines.append("fireworks: " + ("  ".join(f"{k} {v}" for k, v in sorted(fw_states.items())) or "none"))
    return "\n".join(lines)


def restore_backup(args) -> str:
    from motif_screen.db import embedded, load_db_file
    from motif_screen.db.connection import EMBEDDED_KEY
    from motif_screen.errors import ConfigError

    settings = settings_from_args(args)
    creds = load_db_file(settings.db_path)
    if EMBEDDED_KEY not in creds:
        raise ConfigError(f"{settings.db_path} names a MongoDB server, not an embedded store: nothing to restore")
    store = embedded.restore_backup(creds[EMBEDDED_KEY], settings.store_lock_timeout_s)
    return f"restored {store} from {embedded.backup_path(store).name}"


def run(args) -> int:
    if args.restore_backup:
        print(restore_backup(args))
        return 0
    conn, settings = connect_from_args(args, readonly=True)
    status = collect_status(args.campaign)
    fw_states = fireworks_states(conn, settings)
    if args.json:
        print(json.dumps({"campaigns": status, "fireworks": fw_states}, indent=2, default=str))
    else:
        print(f"database: {conn.description}")
        print(render(status, fw_states))
    return 0
