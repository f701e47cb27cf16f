"""MongoDB storage: documents, one connect(), idempotent writes and typed queries."""

from motif_screen.db.connection import Connection, connect, launchpad_for, load_db_file

__all__ = ["Connection", "connect", "launchpad_for", "load_db_file"]
