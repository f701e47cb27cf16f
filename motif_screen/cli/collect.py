"""``motif-screen collect``: record the results of handed-off candidates whose workflows have finished."""

from __future__ import annotations

from motif_screen import keys
from motif_screen.cli.common import add_db_options, connect_from_args

HELP = "record finished oracle workflows as computed or failed (what each round's collector does)"
DESCRIPTION = """\
Each round's last Firework records its candidates' results. When that Firework cannot run — a
workflow was stopped by hand, runs were lost, or you re-ran a fixed step with `lpad rerun_fws` —
this does the same now: every submitted candidate whose oracle workflow has finished leaves
`submitted` as computed (each value from the step that defines it) or failed (with the step and
its reason), finished elemental references are stored, and formation energies and distances to
the hull are brought up to date. Candidates whose workflows still run are left alone. Safe to
repeat: nothing is recorded twice.
"""


def add_arguments(parser) -> None:
    parser.add_argument("--campaign", help="only this campaign (default: every campaign)")
    add_db_options(parser)


def run(args) -> int:
    # FireWorks and the campaign layers are imported here: `--help` stays fast
    from motif_screen.campaign import steps
    from motif_screen.campaign.launchpad import FireworksView
    from motif_screen.db import launchpad_for
    from motif_screen.db.repository import Repository

    conn, settings = connect_from_args(args, readonly=False)
    repo = Repository(conn)
    view = FireworksView(launchpad_for(conn, settings.config_dir / "my_launchpad.yaml"))
    campaigns = repo.campaigns(args.campaign)
    if args.campaign and not campaigns:
        from motif_screen.errors import InputError

        raise InputError(f"no campaign named {args.campaign!r} in the database")
    for campaign in campaigns:
        for round_index in range(campaign.rounds):
            if not repo.count_round(campaign.name, round_index, status=keys.STATUS_SUBMITTED):
                continue
            counts = steps.collect_round(repo, view, campaign.name, round_index)
            print(f"{campaign.name} round {round_index}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    conn.flush()
    return 0
