"""``motif-screen status``: per campaign, the funnel by status and per round, and the Fireworks."""

from __future__ import annotations

import json

from motif_screen import keys
from motif_screen.cli.common import add_db_options, connect_from_args, settings_from_args

HELP = "funnel counts per campaign and round (generated -> screened -> submitted -> hits)"
ROUND_COLUMNS = (
    "round",
    "model_version",
    "generated",
    "valid",
    "unique",
    "novel",
    "screened",
    "submitted",
    "computed",
    "hits",
    "hit_rate",
    "random_hit_rate",
    "acceleration",
)


def add_arguments(parser) -> None:
    parser.add_argument("--campaign", help="only this campaign")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--lost-after",
        type=int,
        default=4 * 3600,
        metavar="SECONDS",
        help="a running Firework silent this long counts as lost (FireWorks' detect_lostruns; default 4 h)",
    )
    parser.add_argument(
        "--restore-backup",
        action="store_true",
        help="embedded store only: put the previous version (<store>.bak) back in place of a broken "
        "store; the broken file is kept beside it as <store>.broken-<time>",
    )
    add_db_options(parser)


def collect_status(repo, campaign: str | None = None) -> dict:
    """Everything `status` shows, as plain data (tests and the run report use it too)."""
    from motif_screen.db.queries import validate_name

    if campaign:
        validate_name(campaign, "campaign")
    counts = repo.funnel_counts(campaign)
    campaigns = repo.campaigns(campaign)
    names = [c.name for c in campaigns] + sorted(set(counts) - {c.name for c in campaigns})
    info = {c.name: c for c in campaigns}
    out = {}
    for name in names:
        c = info.get(name)
        rounds = [{k: getattr(r, k) for k in ROUND_COLUMNS} for r in repo.rounds(name)]
        awaiting = [d for d in repo.computed(name) if (d.oracle or {}).get("awaiting_references")]
        out[name] = {
            "status": c.status if c else "unknown (no Campaign document)",
            "target": dict(c.target) if c and c.target else None,
            "budget": c.budget if c else None,
            "rounds_planned": c.rounds if c else None,
            "oracle": c.oracle if c else None,
            "candidates": counts.get(name, {}).get("total", {s: 0 for s in keys.CANDIDATE_STATUSES}),
            "candidates_per_round": {
                str(k): v
                for k, v in sorted(
                    counts.get(name, {}).get("rounds", {}).items(), key=lambda kv: (kv[0] is None, kv[0])
                )
            },
            "rounds": rounds,
            "awaiting_references": sorted({el for d in awaiting for el in d.oracle["awaiting_references"]}),
            "computed_awaiting_references": len(awaiting),
        }
    return out


def stuck_candidates(repo, lpad, campaign: str | None, expiration_secs: int) -> list[dict]:
    """Submitted candidates that will not move on their own: their Fireworks fizzled, finished
    without being collected, or were lost (no heartbeat for ``expiration_secs``)."""
    from motif_screen.campaign.launchpad import FireworksView, finished

    view = FireworksView(lpad)
    lost = view.lost_fw_ids(expiration_secs)
    out = []
    for c in repo.campaigns(campaign):
        for r in range(c.rounds):
            pending = repo.round_candidates(c.name, r, status=keys.STATUS_SUBMITTED)
            workflows = view.of_candidates([str(d.id) for d in pending])
            for d in pending:
                fws = workflows.get(str(d.id), [])
                if not fws:
                    why = "no oracle Firework on the LaunchPad"
                elif lost_here := lost & {fw.fw_id for fw in fws}:
                    why = f"lost run (Firework {min(lost_here)}): `lpad detect_lostruns --rerun`"
                elif any(fw.state == "FIZZLED" for fw in fws):
                    why = view.failure(fws) or "a step fizzled"
                elif finished(fws):
                    why = "its workflow finished but was not collected: `motif-screen collect`"
                else:
                    continue
                out.append({"campaign": c.name, "round": r, "id": str(d.id), "formula": d.formula, "why": why})
    return out


def fireworks_states(lpad) -> dict[str, int]:
    """Fireworks per state on the LaunchPad of the same setup."""
    states: dict[str, int] = {}
    for doc in lpad.fireworks.find({}, {"state": 1}):
        states[doc["state"]] = states.get(doc["state"], 0) + 1
    return states


def _launchpad(conn, settings):
    from motif_screen.db import launchpad_for
    from motif_screen.errors import ConfigError

    try:
        return launchpad_for(conn, settings.config_dir / "my_launchpad.yaml")
    except ConfigError:
        return None


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _hit_text(target: dict) -> str:
    lower, upper = target.get("lower"), target.get("upper")
    if lower is not None and upper is not None:
        return f"{lower:g} <= value <= {upper:g}"
    return f"value >= {lower:g}" if lower is not None else (f"value <= {upper:g}" if upper is not None else "?")


def render(status: dict, fw_states: dict | None, stuck: list[dict] | None = None) -> str:
    if not status:
        return "no campaigns yet: `motif-screen run` starts the demo campaign"
    lines = []
    for name, s in status.items():
        target = s["target"] or {}
        lines.append(
            f"campaign {name}  [{s['status']}]  target: {target.get('goal', '?')} "
            f"{target.get('property', '?')} (hit: {_hit_text(target)})  "
            f"budget {_fmt(s['budget'])}  oracle {_fmt(s['oracle'])}"
        )
        lines.append("  candidates: " + "  ".join(f"{k} {v}" for k, v in s["candidates"].items()))
        if s["rounds"]:
            widths = [max(len(c), 8) for c in ROUND_COLUMNS]
            lines.append("  " + " ".join(c.rjust(w) for c, w in zip(ROUND_COLUMNS, widths)))
            for r in s["rounds"]:
                lines.append("  " + " ".join(_fmt(r[c]).rjust(w) for c, w in zip(ROUND_COLUMNS, widths)))
        else:
            for rnd, per in s["candidates_per_round"].items():
                lines.append(f"  round {rnd}: " + "  ".join(f"{k} {v}" for k, v in per.items() if v))
        if s.get("computed_awaiting_references"):
            lines.append(
                f"  computed, awaiting references: {s['computed_awaiting_references']} candidates "
                f"(no reference yet for {', '.join(s['awaiting_references'])}); their formation energies "
                "and distances to the hull are filled in when the references are computed"
            )
    if fw_states is not None:
        lines.append("fireworks: " + ("  ".join(f"{k} {v}" for k, v in sorted(fw_states.items())) or "none"))
    for item in stuck or []:
        lines.append(
            f"  stuck in submitted: {item['campaign']} r{item['round']} {item['formula']} {item['id']}: {item['why']}"
        )
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
    from motif_screen.db.repository import Repository

    if args.restore_backup:
        print(restore_backup(args))
        return 0
    conn, settings = connect_from_args(args, readonly=True)
    repo = Repository(conn)
    status = collect_status(repo, args.campaign)
    lpad = _launchpad(conn, settings)
    fw_states = fireworks_states(lpad) if lpad is not None else None
    stuck = stuck_candidates(repo, lpad, args.campaign, args.lost_after) if lpad is not None else []
    if args.json:
        print(json.dumps({"campaigns": status, "fireworks": fw_states, "stuck": stuck}, indent=2, default=str))
    else:
        print(f"database: {conn.description}")
        print(render(status, fw_states, stuck))
    return 0
