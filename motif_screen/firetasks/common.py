"""What every motif_screen Firetask does first: open the worker's database."""

from __future__ import annotations

from motif_screen.errors import ConfigError
from motif_screen.settings import DB_FILE_PLACEHOLDER, resolve_placeholder


def open_worker_db(db_file_param: str = DB_FILE_PLACEHOLDER, fw_spec: dict | None = None):
    """Connect through the worker's db.json (``>>db_file<<`` resolved like atomate's ``env_chk``).

    On the embedded store this is the same store the LaunchPad and atomate's VaspCalcDb use in this
    process; flushing at once also saves what FireWorks did since our last write.
    """
    from motif_screen.db.connection import connect

    try:
        db_file = resolve_placeholder(db_file_param, fw_spec or {})
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    conn = connect(db_file)
    conn.flush()
    return conn
