"""``motif-screen init``: write the FireWorks/atomate configuration for the embedded store or a MongoDB."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import yaml

from motif_screen.db import connection, embedded
from motif_screen.errors import ConfigError, MotifScreenError

HELP = "write my_launchpad.yaml, my_fworker.yaml, db.json and FW_config.yaml (and my_qadapter.yaml)"
DESCRIPTION = """\
Write the files FireWorks and atomate read, into DIR (default: the current folder):

  my_launchpad.yaml  where the LaunchPad (the queue of Fireworks) lives
  my_fworker.yaml    this worker's name and env: db_file, vasp_cmd (atomate's >>placeholders<<)
  db.json            atomate's database file: where task documents and our candidates go
  FW_config.yaml     FireWorks settings (for the embedded store: the client that opens it)
  my_qadapter.yaml   with --queue: FireWorks' CommonAdapter for qlaunch (SLURM, PBS or SGE)

Without --mongodb-uri the embedded store (one JSON file, no server) is used: one process at a time
opens it (motif-screen, lpad, rlaunch alike; a second one is told who holds it), and every write is
atomic with the previous version kept as a backup. With --mongodb-uri the files point at that
server (checked before anything is written). Files that may hold credentials (db.json,
my_launchpad.yaml) are readable by their owner only (mode 0600).

Run `lpad`, `rlaunch` and `motif-screen` from DIR, or set FW_CONFIG_FILE=DIR/FW_config.yaml and
MOTIF_SCREEN_CONFIG_DIR=DIR. Existing files are kept unless --force; a folder written by an older
motif-screen is upgraded in place (its store and data are kept).
"""

DATABASE = "motif_screen"
LAUNCHPAD_DB = "fireworks"
STORE_NAME = "embedded_store.json"
FILES = ("my_launchpad.yaml", "my_fworker.yaml", "db.json", "FW_config.yaml")
QADAPTER = "my_qadapter.yaml"
PRIVATE = ("my_launchpad.yaml", "db.json")  # may hold credentials: owner-only
QUEUES = {"slurm": "SLURM", "pbs": "PBS", "sge": "SGE"}


def add_arguments(parser) -> None:
    parser.add_argument(
        "dir", nargs="?", type=Path, default=Path("."), help="folder to write into (created if missing)"
    )
    parser.add_argument("--mongodb-uri", default=None, help="a real MongoDB, e.g. mongodb://user:pass@host:27017/mydb")
    parser.add_argument("--vasp-cmd", default="vasp_std", help="how this worker runs VASP (FWorker env vasp_cmd)")
    parser.add_argument("--worker-name", default=None, help="FWorker name (default: the host name)")
    parser.add_argument(
        "--queue",
        choices=sorted(QUEUES),
        default=None,
        help="also write my_qadapter.yaml for qlaunch on this queue system (needs --mongodb-uri)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")


def _qadapter(directory: Path, queue: str) -> dict:
    """FireWorks' CommonAdapter: one `rlaunch singleshot` per queue job, reading this folder's config."""
    return {
        "_fw_name": "CommonAdapter",
        "_fw_q_type": QUEUES[queue],
        "rocket_launch": f"rlaunch -c {directory} singleshot",
        "nodes": 1,
        "ntasks": 16,
        "walltime": "24:00:00",
        "queue": None,
        "account": None,
        "job_name": "motif_screen",
        "pre_rocket": None,
        "post_rocket": None,
        "logdir": str(directory / "queue_logs"),
    }


def config_files(
    directory: Path, mongodb_uri: str | None, vasp_cmd: str, worker_name: str, queue: str | None = None
) -> dict[str, str]:
    """The text of each file, as a pure function of the choices (tests and docs use it too)."""
    directory = directory.resolve()
    db_file = directory / "db.json"
    fworker = {
        "name": worker_name,
        "category": "",
        "query": "{}",
        "env": {"db_file": str(db_file), "vasp_cmd": vasp_cmd, "scratch_dir": None, "incar_update": {}},
    }
    fw_config: dict[str, Any] = {
        "LAUNCHPAD_LOC": str(directory / "my_launchpad.yaml"),
        "FWORKER_LOC": str(directory / "my_fworker.yaml"),
        "CONFIG_FILE_DIR": str(directory),
    }
    if mongodb_uri:
        database = connection.parse_uri(mongodb_uri).get("database") or DATABASE
        launchpad = {"host": mongodb_uri, "uri_mode": True, "name": database, "logdir": None, "strm_lvl": "INFO"}
        db = {"host_uri": mongodb_uri, "database": database, "collection": "tasks"}
    else:
        store = directory / STORE_NAME
        fw_config["MongoClient"] = embedded.FireWorksClient(str(store)).as_dict()
        launchpad = {"host": "localhost", "port": 27017, "name": LAUNCHPAD_DB, "logdir": None, "strm_lvl": "INFO"}
        # host and port are for atomate's CalcDb, which requires them; the store file is what is opened
        db = {
            "host": "localhost",
            "port": 27017,
            "database": DATABASE,
            "collection": "tasks",
            connection.EMBEDDED_KEY: str(store),
        }
    files = {
        "my_launchpad.yaml": yaml.safe_dump(launchpad, sort_keys=False),
        "my_fworker.yaml": yaml.safe_dump(fworker, sort_keys=False),
        "db.json": json.dumps(db, indent=2) + "\n",
    }
    if queue:
        fw_config["QUEUEADAPTER_LOC"] = str(directory / QADAPTER)
        files[QADAPTER] = yaml.safe_dump(_qadapter(directory, queue), sort_keys=False)
    files["FW_config.yaml"] = yaml.safe_dump(fw_config, sort_keys=False)
    return files


def _is_legacy(directory: Path) -> bool:
    """A folder written by motif-screen 0.1 (its embedded store opened by mongomock-persistence)."""
    try:
        return connection.LEGACY_EMBEDDED_KEY in json.loads((directory / "db.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _write_all(directory: Path, contents: dict[str, str]) -> None:
    """All files or none: write temporaries (owner-only where they may hold secrets), then rename."""
    temps = []
    try:
        for name, text in contents.items():
            tmp = directory / f".{name}.tmp"
            tmp.unlink(missing_ok=True)
            mode = 0o600 if name in PRIVATE else 0o644
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, mode)  # the umask may have removed bits; never added any
            temps.append((tmp, directory / name))
    except OSError as exc:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write into {directory}: {exc.strerror}") from None
    for tmp, final in temps:
        os.replace(tmp, final)


def _make_folder(directory: Path) -> bool:
    """Create the folder if needed; returns whether it was created (removed again if init fails)."""
    if directory.exists():
        if not directory.is_dir():
            raise ConfigError(f"{directory} exists and is not a folder")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConfigError(f"the configuration folder {directory} is not writable")
        return False
    try:
        directory.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the configuration folder {directory}: {exc.strerror}") from None
    return True


def initialise(
    directory: Path,
    mongodb_uri: str | None = None,
    vasp_cmd: str = "vasp_std",
    worker_name: str | None = None,
    force: bool = False,
    queue: str | None = None,
) -> list[str]:
    """Write the configuration and prepare the LaunchPad; returns the lines to show the user.

    Everything that can fail is checked before the first file is written: the URI, the server, an
    existing store. A folder this call created is removed again when it fails.
    """
    directory = directory.expanduser().resolve()
    if queue and not mongodb_uri:
        raise ConfigError(
            "--queue needs --mongodb-uri: queue jobs run as separate processes, and the embedded "
            "store admits one process at a time"
        )
    if mongodb_uri:
        where = connection.describe_uri(mongodb_uri)  # a malformed URI: one message, credentials left out
    created = _make_folder(directory)
    try:
        contents = config_files(directory, mongodb_uri, vasp_cmd, worker_name or socket.gethostname(), queue)
        existing = [n for n in contents if (directory / n).exists()]
        differing = [n for n in existing if (directory / n).read_text(encoding="utf-8") != contents[n]]
        legacy = _is_legacy(directory)
        if differing and not force and not legacy:
            raise ConfigError(
                f"{', '.join(differing)} already exist in {directory} with other settings; use --force to overwrite"
            )
        lines = []
        if mongodb_uri:
            connection.real_client({"host": mongodb_uri}, where, 5000)
            lines.append(f"MongoDB at {where} answered")
        else:
            store = directory / STORE_NAME
            if store.exists():
                embedded.read_store_file(store)  # a broken store is reported before anything is written
                lines.append(f"embedded store: {store} (kept; one process at a time)")
            else:
                lines.append(f"embedded store: {embedded.init_store_file(store)} (new; one process at a time)")
        _write_all(directory, contents)
    except MotifScreenError:
        if created:
            for leftover in directory.iterdir():
                leftover.unlink()
            directory.rmdir()
        raise
    lines.append(
        f"wrote {', '.join(contents)} in {directory}" + (" (upgraded from motif-screen 0.1)" if legacy else "")
    )
    lines.extend(_prepare_launchpad(directory))
    return lines


def _prepare_launchpad(directory: Path) -> list[str]:
    """What `lpad reset` does for a new database, and only for one that holds no workflow."""
    from motif_screen.db import connect, launchpad_for
    from motif_screen.settings import Settings

    settings = Settings(config_dir=directory)
    conn = connect(settings.db_path, settings=settings)
    lpad = launchpad_for(conn, directory / "my_launchpad.yaml")
    if lpad.fw_id_assigner.count_documents({}) == 0:
        lpad.reset("", require_password=False, max_reset_wo_password=0)
        conn.flush()
        return ["LaunchPad initialised (fw_id counter, indexes)"]
    conn.flush()
    return [f"LaunchPad already holds {lpad.fireworks.count_documents({})} Fireworks; kept"]


def run(args) -> int:
    for line in initialise(args.dir, args.mongodb_uri, args.vasp_cmd, args.worker_name, args.force, args.queue):
        print(line)
    directory = args.dir.expanduser().resolve()
    print(
        "\nnext:\n"
        f"  cd {directory}\n"
        "  motif-screen run                 # a whole demo campaign (embedded store, CHGNet oracle)\n"
        "  motif-screen status              # funnel per campaign and round\n"
        "  lpad get_wflows -d less          # the FireWorks view of the same database"
    )
    return 0
