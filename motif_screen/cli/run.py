"""``motif-screen run``: a whole discovery campaign on this machine, through FireWorks.

It adds the campaign's first round to the LaunchPad and launches rockets in this process until no
Firework is left — the same Fireworks HPC users `rlaunch`, with the local CHGNet oracle in place
of atomate + VASP by default. Running it again resumes: Fireworks that were in flight when the
previous run died are re-run (their steps are idempotent), nothing is duplicated.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from motif_screen import keys
from motif_screen.cli.common import (
    add_campaign_options,
    add_db_options,
    campaign_spec_from_args,
    connect_from_args,
    settings_from_args,
    writable_folder,
)
from motif_screen.errors import ConfigError

# FireWorks, the campaign layers and torch are imported inside the functions: `--help` stays fast

HELP = "run a whole discovery campaign here (demo: perovskites, CHGNet oracle, embedded store)"
DESCRIPTION = """\
Run a discovery campaign end to end on this machine: generate candidates with the model, pre-screen
them, send the best (plus a few random controls) to the oracle, collect, retrain, and repeat for
--rounds rounds. Everything goes through the LaunchPad of this folder (see `motif-screen init`), so
`lpad` and `motif-screen query/status` show it, and the same workflows run on a cluster with
`rlaunch`. The default oracle is CHGNet (a machine-learned potential, labelled "chgnet", never DFT);
--oracle vasp hands candidates to atomate instead (needs VASP on the workers).

The demo looks for stable perovskites: minimise the energy above the convex hull of each candidate's
chemical system (eV/atom, against the oracle's own references and competing phases: for CHGNet the
shipped set of elements and binaries); a hit is at or below --hit-below (default 0.1 eV/atom).
The report's summary.txt compares the hits per oracle call of the acquisition picks with those of the
random controls. Interrupt it any time (Ctrl-C); run it again to resume.
"""

DEMO_CAMPAIGN = "demo-perovskites"


def add_arguments(parser) -> None:
    add_campaign_options(
        parser, default_name=DEMO_CAMPAIGN, default_oracle=keys.SOURCE_CHGNET, default_target=keys.ENERGY_ABOVE_HULL
    )
    parser.add_argument("--report", type=Path, help="report folder (default: <config-dir>/report)")
    parser.add_argument("--no-report", action="store_true", help="skip the report (plots, CSV, CIFs)")
    add_db_options(parser)


STUCK_STATES = ("WAITING", "READY", "RESERVED", "RUNNING", "PAUSED")


def campaign_fireworks(lpad, campaign: str, states: list[str] | None = None) -> list[dict]:
    """The campaign's own step Fireworks (create, generate, prescreen, submit, collect), optionally in ``states``.

    The oracle Fireworks a round inserts as detours carry the campaign in their spec too (FireWorks
    hands it on); they are told apart by name. An oracle calculation that fails is the collector's to
    record as a failed candidate, not a failed campaign step.
    """
    from motif_screen.campaign.names import step_name_prefix
    from motif_screen.workflows.campaign import SPEC_CAMPAIGN

    query: dict[str, Any] = {f"spec.{SPEC_CAMPAIGN}": campaign}
    if states:
        query["state"] = {"$in": states}
    own = step_name_prefix(campaign)
    return [fw for fw in lpad.fireworks.find(query, {"fw_id": 1, "state": 1, "name": 1}) if fw["name"].startswith(own)]


def start_or_resume(lpad, spec, embedded: bool) -> str:
    """Add the campaign workflow once; on resume, re-run what a previous run left behind.

    Fizzled campaign steps are re-run (after a fix, the campaign continues where it stopped). On
    the embedded store, Fireworks a dead run left RUNNING or RESERVED are re-run too: this process
    holds the store, so nobody else can be running them. On a shared MongoDB other workers may be;
    use `lpad detect_lostruns --rerun` there.
    """
    from motif_screen.workflows.campaign import campaign_workflow

    if not campaign_fireworks(lpad, spec.name):
        lpad.add_wf(campaign_workflow(spec))
        return "started"
    rerun = [fw["fw_id"] for fw in campaign_fireworks(lpad, spec.name, ["FIZZLED"])]
    if embedded:
        rerun += [fw["fw_id"] for fw in lpad.fireworks.find({"state": {"$in": ["RUNNING", "RESERVED"]}}, {"fw_id": 1})]
    for fw_id in sorted(set(rerun)):
        lpad.rerun_fw(fw_id)
    return f"resumed ({len(set(rerun))} fizzled or interrupted Fireworks re-run)" if rerun else "resumed"


def campaign_failures(lpad, campaign: str) -> list[str]:
    """One line per campaign step that fizzled, or a line saying why the campaign is stuck."""
    from motif_screen.campaign.launchpad import FireworksView

    view = FireworksView(lpad)
    lines = [view.fizzle_reason(fw["fw_id"]) for fw in campaign_fireworks(lpad, campaign, ["FIZZLED"])]
    stuck = campaign_fireworks(lpad, campaign, list(STUCK_STATES))
    if not lines and stuck:
        names = ", ".join(f"{fw['name']} ({fw['state']})" for fw in stuck[:5])
        lines.append(f"{len(stuck)} campaign Fireworks cannot run (e.g. {names}); `lpad get_fws -d more` shows why")
    return lines


class _WarningsOnly(logging.Filter):
    """Lets warnings and errors through, drops INFO and DEBUG records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def _quiet_fireworks_logs() -> None:
    """One progress bar instead of FireWorks' INFO line per task; warnings and errors still show.

    FireWorks resets its loggers' levels on every launch, so a filter (which it leaves alone) is used.
    """
    for name in ("launchpad", "rocket.launcher"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WarningsOnly) for f in logger.filters):
            logger.addFilter(_WarningsOnly())


def launch_until_done(lpad, fworker, conn, launch_root: Path) -> int:
    """Rockets in this process until nothing is READY; flush after each so a kill loses one at most."""
    from fireworks.core.rocket_launcher import launch_rocket
    from tqdm.auto import tqdm

    launched = 0
    launch_root.mkdir(parents=True, exist_ok=True)
    here = os.getcwd()
    with tqdm(desc="fireworks", unit="fw") as bar:
        while True:
            launch_dir = launch_root / f"launcher_{datetime.now():%Y-%m-%d-%H-%M-%S-%f}_{os.getpid()}"
            launch_dir.mkdir()
            os.chdir(launch_dir)
            try:
                ran = launch_rocket(lpad, fworker, strm_lvl="WARNING")
            finally:
                os.chdir(here)
                conn.flush()
            if not ran:
                launch_dir.rmdir()
                return launched
            launched += 1
            bar.update(1)


def run(args) -> int:
    from fireworks import FWorker

    from motif_screen.campaign import steps
    from motif_screen.campaign.report import write_report
    from motif_screen.cli.status import collect_status, render
    from motif_screen.db import launchpad_for
    from motif_screen.db.repository import Repository

    spec = campaign_spec_from_args(args)  # validate everything before touching the database
    launches = writable_folder(settings_from_args(args).config_dir / "launches", "launch folder")
    conn, settings = connect_from_args(args, readonly=False)
    repo = Repository(conn)
    report_dir = None if args.no_report else writable_folder(args.report or settings.report_path, "report folder")
    lpad = launchpad_for(conn, settings.config_dir / "my_launchpad.yaml")
    fworker_file = settings.config_dir / "my_fworker.yaml"
    if not fworker_file.is_file():
        raise ConfigError(f"{fworker_file} is missing: run `motif-screen init {settings.config_dir}` first")
    fworker = FWorker.from_file(str(fworker_file))

    created = steps.create_campaign(repo, spec)
    if created["registered_shipped_model"]:
        print(f"registered the shipped model {spec.model.name} as version 1 (promoted)")
    state = start_or_resume(lpad, spec, conn.is_embedded)
    conn.flush()
    print(
        f"campaign {spec.name}: {'created' if created['created'] else 'found'}, {state}; database: {conn.description}"
    )
    started = time.monotonic()
    _quiet_fireworks_logs()
    n = launch_until_done(lpad, fworker, conn, launches)
    print(f"ran {n} Fireworks in {time.monotonic() - started:.0f} s")

    print(render(collect_status(repo, spec.name), None))
    if report_dir is not None:
        files = write_report(repo, spec, report_dir)
        print(f"\nreport: {report_dir}\n" + "\n".join(f"  {f.name}" for f in files))
        print("\n" + (report_dir / "summary.txt").read_text(encoding="utf-8"), end="")
    failures = campaign_failures(lpad, spec.name)
    if failures:
        print(f"\ncampaign {spec.name} did not complete:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        print(
            "fix the cause and run `motif-screen run` again with the same options: fizzled steps are re-run",
            file=sys.stderr,
        )
        return 1
    print(
        "\nlook further:\n"
        f"  motif-screen status --campaign {spec.name}\n"
        f"  motif-screen query --campaign {spec.name} --status computed --on oracle --sort acquisition\n"
        f"  motif-screen query --campaign {spec.name} --status computed --format cif --out hits/\n"
        "  lpad get_wflows -d more\n"
    )
    return 0
