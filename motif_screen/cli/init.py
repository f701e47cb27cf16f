"""``motif-screen init``: write the FireWorks/atomate configuration for the embedded store or a MongoDB."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from motif_screen.errors import ConfigError

HELP = "write my_launchpad.yaml, my_fworker.yaml, db.json and FW_config.yaml"
DESCRIPTION = """\
Write the four files FireWorks and atomate read, into DIR (default: the current folder):

  my_launchpad.yaml  where the LaunchPad (the queue of Fireworks) lives
  my_fworker.yaml    this worker's name and env: db_file, vasp_cmd (atomate's >>placeholders<<)
  db.json            atomate's database file: where task documents and our candidates go
  FW_config.yaml     FireWorks settings; for the embedded store, MONGOMOCK_SERVERSTORE_FILE

Without --mongodb-uri the embedded store (a JSON file, FireWorks' mongomock support) is used: no
server is needed, but only one process may write at a time. With --mongodb-uri the files point
at that server (checked before anything is written). Run `lpad`, `rlaunch` and `motif-screen`
from DIR, or set FW_CONFIG_FILE=DIR/FW_config.yaml and MOTIF_SCREEN_CONFIG_DIR=DIR.
Existing files are kept unless --force.
"""

DATABASE = "motif_screen"
LAUNCHPAD_DB = "fireworks"
STORE_NAME = "embedded_store.json"
FILES = ("my_launchpad.yaml", "my_fworker.yaml", "db.json", "FW_config.yaml")


def add_arguments(parser) -> None:
    parser.add_argument("dir", nargs="?", type=Path, default=Path("."), help="folder to write into (created if missing)")
    parser.add_argument("--mongodb-uri", default=None, help="a real MongoDB, e.g. mongodb://user:pass@host:27017/mydb")
    parser.add_argument("--vasp-cmd", default="vasp_std", help="how this worker runs VASP (FWorker env vasp_cmd)")
    parser.add_argument("--worker-name", default=None, help="FWorker name (default: the host name)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")


def config_files(directory: Path, mongodb_uri: str | None, vasp_cmd: str, worker_name: str) -> dict[str, str]:
    """The text of each file, as a pure function of the choices (tests and docs use it too)."""
    directory = directory.resolve()
    db_file = directory / "db.json"
    fworker = {
        "name": worker_name,
        "category": "",
        "query": "{}",
        "env": {"db_file": str(db_file), "vasp_cmd": vasp_cmd, "scratch_dir": None, "incar_update": {}},
    }
    fw_config = {
        "LAUNCHPAD_LOC": str(directory / "my_launchpad.yaml"),
        "FWORKER_LOC": str(directory / "my_fworker.yaml"),
        "CONFIG_FILE_DIR": str(directory),
    }
    if mongodb_uri:
        from pymongo.uri_parser import parse_uri

        database = parse_uri(mongodb_uri).get("database") or DATABASE
        launchpad = {"host": mongodb_uri, "uri_mode": True, "name": database, "logdir": None, "strm_lvl": "INFO"}
        db = {"host_uri": mongodb_uri, "database": database, "collection": "tasks"}
    else:
        store = directory / STORE_NAME
        fw_config["MONGOMOCK_SERVERSTORE_FILE"] = str(store)
        launchpad = {"host": "localhost", "port": 27017, "name": LAUNCHPAD_DB, "logdir": None, "strm_lvl": "INFO"}
        db = {
            "host": "localhost",
            "port": 27017,
            "database": DATABASE,
            "collection": "tasks",
            "mongomock_serverstore_file": str(store),
        }
    return {
        "my_launchpad.yaml": yaml.safe_dump(launchpad, sort_keys=False),
        "my_fworker.yaml": yaml.safe_dump(fworker, sort_keys=False),
        "db.json": json.dumps(db, indent=2) + "\n",
        "FW_config.yaml": yaml.safe_dump(fw_config, sort_keys=False),
    }


def _write_all(directory: Path, contents: dict[str, str]) -> None:
    """All files or none: write temporaries, then rename."""
    temps = []
    try:
        for name, text in contents.items():
            tmp = directory / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            temps.append((tmp, directory / name))
    except OSError as exc:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write into {directory}: {exc.strerror}") from exc
    for tmp, final in temps:
        os.replace(tmp, final)


def initialise(directory: Path, mongodb_uri: str | None = None, vasp_cmd: str = "vasp_std",
               worker_name: str | None = None, force: bool = False) -> list[str]:
    """Write the configuration and prepare the LaunchPad; returns the lines to show the user."""
    import socket

    from motif_screen.db import connection, embedded

    from motif_screen.cli.common import writable_folder

    directory = writable_folder(directory.expanduser().resolve(), "configuration folder", ConfigError)
    contents = config_files(directory, mongodb_uri, vasp_cmd, worker_name or socket.gethostname())
    existing = [n for n in FILES if (directory / n).exists()]
    differing = [n for n in existing if (directory / n).read_text(encoding="utf-8") != contents[n]]
    if differing and not force:
        raise ConfigError(f"{', '.join(differing)} already exist in {directory} with other settings; use --force to overwrite")

    lines = []
    if mongodb_uri:
        where = connection.describe_uri(mongodb_uri)
        connection._real_client({"host": mongodb_uri}, where, 5000)  # fail before writing anything
        lines.append(f"MongoDB at {where} answered")
    else:
        store = embedded.init_store_file(directory / STORE_NAME)
        lines.append(f"embedded store: {store} (one writer at a time; no server needed)")
    _write_all(directory, contents)
    lines.append(f"wrote {', '.join(FILES)} in {directory}")
    lines.extend(_prepare_launchpad(directory))
    return lines


def _prepare_launchpad(directory: Path) -> list[str]:
    """What `lpad reset` does for a new database, without ever wiping an existing one."""
    from motif_screen.db import connect, launchpad_for
    from motif_screen.settings import Settings

    settings = Settings(config_dir=directory)
    conn = connect(settings.db_path, settings=settings)
    lpad = launchpad_for(conn, directory / "my_launchpad.yaml")
    if lpad.fw_id_assigner.count_documents({}) == 0:
        lpad._restart_ids(1, 1)
        lpad.tuneup()
        conn.flush()
        return ["LaunchPad initialised (fw_id counter, indexes)"]
    conn.flush()
    return [f"LaunchPad already holds {lpad.fireworks.count_documents({})} Fireworks; kept"]


def run(args) -> int:
    for line in initialise(args.dir, args.mongodb_uri, args.vasp_cmd, args.worker_name, args.force):
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
