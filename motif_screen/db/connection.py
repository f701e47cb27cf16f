"""One ``connect()`` for a real MongoDB (atomate's db.json or a URI) and for the embedded store.

Like maggma's stores, every query in the package is written once against a pymongo-like
``Database``; only the client changes. The embedded store is chosen by a db.json written by
``motif-screen init`` (key ``mongomock_serverstore_file``) or by FireWorks' own
``MONGOMOCK_SERVERSTORE_FILE``; then the LaunchPad, atomate's ``VaspCalcDb`` and our mongoengine
documents share one store in this process (see :mod:`motif_screen.db.embedded`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mongoengine
import pymongo
from mongoengine.connection import disconnect
from pymongo.errors import ConfigurationError as PyConfigError
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.uri_parser import parse_uri

from motif_screen import keys
from motif_screen.db import embedded
from motif_screen.db.documents import drop_obsolete_indexes
from motif_screen.errors import ConfigError, DatabaseError
from motif_screen.settings import get_settings

EMBEDDED_KEY = "embedded_store"  # db.json key of the embedded store file (written by `motif-screen init`)
LEGACY_EMBEDDED_KEY = "mongomock_serverstore_file"  # the same, as written by motif-screen 0.1
LEGACY_STORE_ENV = "MONGOMOCK_SERVERSTORE_FILE"  # FireWorks' own mongomock-persistence switch
MONGOENGINE_ALIAS = "default"


@dataclass
class Connection:
    """An open database: ``db`` is a pymongo ``Database`` (or mongomock's twin)."""

    client: Any
    db: Any
    database_name: str
    description: str  # where we are connected, never with credentials
    embedded_store: str | None = None
    readonly: bool = False
    db_file: str | None = None
    tasks_collection: str = keys.ATOMATE_TASKS  # atomate's task documents (db.json `collection`)

    @property
    def is_embedded(self) -> bool:
        return self.embedded_store is not None

    def flush(self) -> None:
        """Persist the embedded store now; a no-op on a real MongoDB (it persists itself)."""
        if self.embedded_store and not self.readonly:
            embedded.flush(self.embedded_store)

    def collection(self, name: str):
        return self.db[name]


def load_db_file(path: str | os.PathLike) -> dict:
    """Read atomate's db.json with a clear error for every way it can be wrong."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(
            f"db file {path} does not exist: run `motif-screen init` or point --db-file at atomate's db.json"
        )
    try:
        creds = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"db file {path} cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"db file {path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"db file {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(creds, dict):
        raise ConfigError(f"db file {path} must hold a JSON object")
    if LEGACY_EMBEDDED_KEY in creds:
        raise ConfigError(
            f"db file {path} was written by an older motif-screen for an embedded store that FireWorks' "
            f"own tools could overwrite: run `motif-screen init {path.parent}` again to upgrade it "
            "(the store and its data are kept)"
        )
    if EMBEDDED_KEY not in creds and "host_uri" not in creds and "host" not in creds:
        raise ConfigError(f"db file {path} names no `host`, `host_uri` or `{EMBEDDED_KEY}`")
    if "database" not in creds and "host_uri" not in creds:
        raise ConfigError(f"db file {path} names no `database`")
    return creds


def describe_uri(uri: str) -> str:
    """The hosts and database of a MongoDB URI, with any credentials removed."""
    try:
        parsed = parse_uri(uri, warn=True)
    except Exception as exc:  # pymongo raises InvalidURI / ConfigurationError / ValueError
        scheme = uri.split("://", 1)[0] if "://" in uri else "?"
        raise ConfigError(f"the MongoDB URI ({scheme}://…) is malformed: {type(exc).__name__}") from None
    hosts = ",".join(f"{h}:{p}" for h, p in parsed["nodelist"]) or "?"
    return f"mongodb://{hosts}/{parsed.get('database') or ''}"


def real_client(kwargs: dict, where: str, timeout_ms: int):
    """A pymongo client that has answered a ping; one clear DatabaseError otherwise."""
    try:
        client = pymongo.MongoClient(serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, **kwargs)
        client.admin.command("ping")
    except OperationFailure as exc:
        reason = exc.details.get("errmsg", "authentication failed") if exc.details else "operation failed"
        raise DatabaseError(f"MongoDB at {where} refused us: {reason}") from None
    except PyConfigError as exc:
        raise DatabaseError(f"MongoDB settings for {where} are invalid: {type(exc).__name__}") from None
    except PyMongoError:
        raise DatabaseError(
            f"MongoDB at {where} did not answer within {timeout_ms / 1000:.1f} s — is the server running and reachable?"
        ) from None
    return client


def _register_mongoengine(client, database_name: str) -> None:
    """Bind our mongoengine documents to the same client (never a second one)."""
    disconnect(MONGOENGINE_ALIAS)
    mongoengine.connect(
        db=database_name,
        alias=MONGOENGINE_ALIAS,
        host="localhost",
        mongo_client_class=lambda *args, **kwargs: client,
        uuidRepresentation="standard",
    )


def _embedded_client(store_path: str, readonly: bool, settings):
    """The shared mongomock client of this process's embedded store, FireWorks and atomate bound to it."""
    if os.environ.get(LEGACY_STORE_ENV):
        raise ConfigError(
            f"{LEGACY_STORE_ENV} is set: FireWorks would open the embedded store with mongomock-persistence, "
            "which rewrites it without a lock. Unset it; `motif-screen init` writes the configuration FireWorks needs."
        )
    store = embedded.open_store(store_path, writable=not readonly, lock_timeout_s=settings.store_lock_timeout_s)
    embedded.bind_clients(embedded.FireWorksClient(store_path, writable=not readonly))
    return store.client


def connect(
    db_file: str | os.PathLike | None = None,
    uri: str | None = None,
    *,
    database: str | None = None,
    readonly: bool = False,
    settings=None,
) -> Connection:
    """Open the database named by a URI, a db.json file, or the settings' default db.json.

    ``readonly=True`` is for queries: it never takes the embedded store's writer lock and never
    writes the file, so it can run beside a campaign.
    """
    settings = settings or get_settings()
    timeout_ms = settings.connect_timeout_ms

    if uri:
        description = describe_uri(uri)
        database_name = database or parse_uri(uri).get("database") or "motif_screen"
        client = real_client({"host": uri}, description, timeout_ms)
        embedded.unbind_clients()
        conn = Connection(client, client[database_name], database_name, description, readonly=readonly)
        _register_mongoengine(client, database_name)
        if not readonly:
            drop_obsolete_indexes(conn.db)
        return conn

    path = Path(db_file or settings.db_path).expanduser()
    creds = load_db_file(path)
    database_name = database or creds.get("database") or "motif_screen"
    tasks_collection = creds.get("collection", keys.ATOMATE_TASKS)

    if EMBEDDED_KEY in creds:
        store_path = str(Path(creds[EMBEDDED_KEY]).expanduser())
        client = _embedded_client(store_path, readonly, settings)
        conn = Connection(
            client,
            client[database_name],
            database_name,
            f"embedded store {store_path}",
            embedded_store=store_path,
            readonly=readonly,
            db_file=str(path),
            tasks_collection=tasks_collection,
        )
    else:
        if "host_uri" in creds:
            description = describe_uri(creds["host_uri"])
            kwargs = {"host": creds["host_uri"]}
        else:
            description = f"mongodb://{creds['host']}:{creds.get('port', 27017)}/{database_name}"
            kwargs = {"host": creds["host"], "port": int(creds.get("port", 27017))}
            user_key, pass_key = (
                ("readonly_user", "readonly_password")
                if readonly and "readonly_user" in creds
                else ("admin_user", "admin_password")
            )
            if user_key in creds:
                kwargs.update(username=creds[user_key], password=creds.get(pass_key))
            if "authsource" in creds:
                kwargs["authSource"] = creds["authsource"]
        kwargs.update(creds.get("mongoclient_kwargs", {}))
        client = real_client(kwargs, description, timeout_ms)
        embedded.unbind_clients()
        conn = Connection(
            client,
            client[database_name],
            database_name,
            description,
            readonly=readonly,
            db_file=str(path),
            tasks_collection=tasks_collection,
        )
    _register_mongoengine(client, database_name)
    if not readonly:
        drop_obsolete_indexes(conn.db)
    return conn


def launchpad_for(conn: Connection, launchpad_file: str | os.PathLike | None = None):
    """The FireWorks LaunchPad of this setup, on the same store as ``conn`` when embedded."""
    # deferred: FireWorks' own config loads motif_screen.db.embedded while FireWorks is importing
    from fireworks import LaunchPad

    if conn.embedded_store is not None:  # conn.is_embedded, spelled out so that the store path is a str
        # FireWorks may have been imported only now, with FW_config.yaml's writer client
        embedded.bind_clients(embedded.FireWorksClient(conn.embedded_store, writable=not conn.readonly))
    if launchpad_file and Path(launchpad_file).exists():
        try:
            return LaunchPad.from_file(str(launchpad_file))
        except Exception as exc:  # FireWorks raises bare exceptions for bad files
            raise ConfigError(f"launchpad file {launchpad_file} cannot be used: {exc}") from exc
    if conn.is_embedded:
        return LaunchPad(host="localhost", name="fireworks", strm_lvl="WARNING")
    raise ConfigError("no my_launchpad.yaml found: run `motif-screen init` or pass --launchpad-file")
