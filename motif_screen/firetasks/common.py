"""What every motif_screen Firetask does first: open the worker's database as a query layer."""

from __future__ import annotations

from contextlib import contextmanager

from motif_screen.db.connection import connect
from motif_screen.db.repository import Repository
from motif_screen.errors import ConfigError
from motif_screen.settings import DB_FILE_PLACEHOLDER, resolve_placeholder


@contextmanager
def worker_repository(task, fw_spec: dict | None):
    """The query layer of the worker's db.json (``>>db_file<<`` resolved like atomate's ``env_chk``).

    On the embedded store this is the store the LaunchPad and atomate's ``VaspCalcDb`` use in this
    process; it is written out when the step ends, so a killed worker loses at most this step.
    """
    try:
        db_file = resolve_placeholder(task.get("db_file", DB_FILE_PLACEHOLDER), fw_spec or {})
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    conn = connect(db_file)
    try:
        yield Repository(conn)
    finally:
        conn.flush()
