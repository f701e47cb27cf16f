"""The embedded store: a JSON file that stands in for MongoDB on a machine without a server.

One process at a time opens the file for writing; it holds an ``fcntl`` lock beside the file for
as long as it lives, keeps the data in one mongomock client shared by everything in the process
(the LaunchPad, atomate's ``VaspCalcDb``, our documents), and writes the file back atomically
(temporary file, ``fsync``, rename; the previous version kept as ``<file>.bak``) at each flush and
at exit. Readers (``motif-screen status`` / ``query``) load the last written version and never
write. A process that finds the lock taken waits a little, then stops with one message.

FireWorks' own tools reach the store through ``FW_config.yaml`` (written by ``motif-screen init``)::

    MongoClient: {"@module": "motif_screen.db.embedded", "@class": "FireWorksClient",
                  "store": "/abs/path/embedded_store.json"}

FireWorks reads ``MongoClient`` from its config and monty decodes the mapping into
:meth:`FireWorksClient.from_dict`, so ``lpad``, ``rlaunch``, ``qlaunch`` and any ``LaunchPad``
built in that folder take the same lock and write the same way. Data goes in with mongomock's
``insert_many`` and comes out with ``find``; the one use of mongomock's internals is
:func:`linear_cursors`, which says why.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, TextIO

import mongomock
import mongomock.gridfs
from bson import json_util

from motif_screen.errors import DatabaseError, StoreLockedError

FORMAT = "motif_screen.embedded_store"
FORMAT_VERSION = 2
BACKUP_SUFFIX = ".bak"
LOCK_SUFFIX = ".lock"
INDEX_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression")
# FireWorks and atomate look their client class up under these module-level names
CLIENT_NAMES = {
    "fireworks.fw_config": "MongoClient",
    "fireworks.core.launchpad": "MongoClient",
    "atomate.utils.database": "MongoClient",
}

_lock = threading.RLock()
_writers: dict[str, EmbeddedStore] = {}
_readers: dict[str, tuple[tuple[int, int], EmbeddedStore]] = {}  # path -> ((mtime_ns, size), view)


# --- the file ------------------------------------------------------------------------------------


def empty_store() -> dict:
    return {"format": FORMAT, "version": FORMAT_VERSION, "databases": {}}


def init_store_file(path: str | os.PathLike) -> Path:
    """Create an empty store unless one exists; returns its absolute path."""
    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _atomic_write(path, json_util.dumps(empty_store()), keep_backup=False)
    return path


def backup_path(path: str | os.PathLike) -> Path:
    return Path(f"{path}{BACKUP_SUFFIX}")


def _atomic_write(path: Path, text: str, keep_backup: bool = True) -> None:
    """Write ``text`` to ``path`` so that the file is always whole; the old one becomes the backup."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if keep_backup and path.is_file():
            bak_tmp = path.with_name(f".{path.name}.{os.getpid()}.bak.tmp")
            bak_tmp.unlink(missing_ok=True)
            os.link(path, bak_tmp)  # the current version stays in place until the rename below
            os.replace(bak_tmp, backup_path(path))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DatabaseError(f"cannot write the embedded store {path}: {exc.strerror}") from None


def _migrate(content: dict, path: Path) -> dict:
    """Bring a parsed store file to the current format (version 1: mongomock-persistence's layout)."""
    if content.get("format") == FORMAT:
        if content.get("version") != FORMAT_VERSION or not isinstance(content.get("databases"), dict):
            raise DatabaseError(
                f"embedded store {path} has format version {content.get('version')!r}; "
                f"this motif-screen reads version {FORMAT_VERSION}"
            )
        return content
    databases = {}
    for db_name, collections in content.items():  # {db: {coll: {"name": ..., "documents": [[id, doc], ...]}}}
        if not isinstance(collections, dict):
            raise DatabaseError(f"embedded store {path} is not a store file (database {db_name!r} is not a mapping)")
        databases[db_name] = {
            coll: {"indexes": [], "documents": [doc for _, doc in body.get("documents", [])]}
            for coll, body in collections.items()
        }
    return {"format": FORMAT, "version": FORMAT_VERSION, "databases": databases}


def read_store_file(path: str | os.PathLike) -> dict:
    """The store's content in the current format; a DatabaseError naming the backup when it is broken."""
    path = Path(path)
    if not path.exists():
        raise DatabaseError(f"embedded store {path} does not exist: run `motif-screen init` first")
    if not path.is_file():
        raise DatabaseError(f"embedded store {path} is not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatabaseError(f"embedded store {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        text = None
    try:
        content = json_util.loads(text) if text and text.strip() else None
    except (ValueError, TypeError):
        content = None
    if not isinstance(content, dict):
        what = "empty" if text is not None and not text.strip() else "not valid JSON"
        raise DatabaseError(f"embedded store {path} is {what}. {_restore_hint(path)}")
    return _migrate(content, path)


def _restore_hint(path: Path) -> str:
    bak = backup_path(path)
    if bak.is_file():
        stamp = _dt.datetime.fromtimestamp(bak.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"The previous version ({bak.name}, written {stamp}) can be restored with "
            "`motif-screen status --restore-backup`."
        )
    return "There is no backup beside it; re-run `motif-screen init` in a new folder."


def restore_backup(path: str | os.PathLike, lock_timeout_s: float = 0.0) -> Path:
    """Put the backup back in place of a broken (or unwanted) store, under the writer lock."""
    path = Path(path)
    bak = backup_path(path)
    if not bak.is_file():
        raise DatabaseError(f"there is no backup {bak} to restore")
    read_store_file(bak)  # refuse to restore a backup that is itself broken
    lock = StoreLock(path)
    lock.acquire(lock_timeout_s)
    try:
        broken = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        if path.exists():
            os.replace(path, broken)
        _atomic_write(path, bak.read_text(encoding="utf-8"), keep_backup=False)
    finally:
        lock.release()
    return path


# --- mongomock client <-> file content (public mongomock API only) --------------------------------


def load_into(client, content: dict) -> None:
    for db_name, collections in content["databases"].items():
        for coll_name, body in collections.items():
            collection = client[db_name][coll_name]
            for index in body.get("indexes", []):
                options = {k: v for k, v in index.items() if k in INDEX_OPTIONS}
                collection.create_index([tuple(k) for k in index["key"]], name=index["name"], **options)
            if body.get("documents"):
                collection.insert_many(body["documents"], ordered=True)
            elif coll_name not in client[db_name].list_collection_names():
                client[db_name].create_collection(coll_name)


def dump(client) -> dict:
    databases: dict[str, dict[str, dict]] = {}
    for db_name in client.list_database_names():
        db = client[db_name]
        databases[db_name] = {}
        for coll_name in db.list_collection_names():
            collection = db[coll_name]
            indexes = [
                {
                    "name": name,
                    "key": [list(k) for k in info["key"]],
                    **{k: info[k] for k in INDEX_OPTIONS if k in info},
                }
                for name, info in collection.index_information().items()
                if name != "_id_"
            ]
            databases[db_name][coll_name] = {"indexes": indexes, "documents": list(collection.find())}
    return {"format": FORMAT, "version": FORMAT_VERSION, "databases": databases}


def linear_cursors() -> None:
    """Make reading n documents through a mongomock cursor cost O(n), not O(n²).

    mongomock 4.3's ``Cursor.__next__`` calls ``_compute_results(with_limit_and_skip=True)`` for
    every document, which copies the whole remaining result list (``results[skip:]``) each time:
    reading 10⁵ candidates took 165 s on the development machine, 40,000 took 24 s, and every
    flush of the store reads every document. mongomock has no public way to read a collection
    without that cursor (``aggregate`` reads through it too), so this caches the windowed list per
    (result list, skip, limit) on the cursor; the result list itself is computed exactly as before,
    so what a cursor yields does not change (``tests/db/test_embedded_cursor.py`` holds both).
    Applied once, when a store is opened; a mongomock without ``Cursor._compute_results`` is left
    as it is (correct, only slower).
    """
    from mongomock.collection import Cursor

    original = getattr(Cursor, "_compute_results", None)
    if original is None or getattr(original, "linear", False):
        return

    def _compute_results(self, with_limit_and_skip=False):
        results = original(self, with_limit_and_skip=False)  # the cached full list, not a copy
        if not with_limit_and_skip:
            return results
        window = self.__dict__.get("_window")
        if window is None or window[0] is not results or window[1:3] != (self._skip, self._limit):
            window = (results, self._skip, self._limit, original(self, with_limit_and_skip=True))
            self.__dict__["_window"] = window
        return window[3]

    _compute_results.linear = True  # type: ignore[attr-defined]
    _compute_results.__wrapped__ = original  # type: ignore[attr-defined]
    Cursor._compute_results = _compute_results  # type: ignore[method-assign]


def _new_client(content: dict):
    linear_cursors()
    mongomock.gridfs.enable_gridfs_integration()  # GridFS over mongomock (checkpoints, FireWorks' fallback)
    client: mongomock.MongoClient[dict[str, Any]] = mongomock.MongoClient()
    load_into(client, content)
    return client


# --- the writer lock -----------------------------------------------------------------------------


class StoreLock:
    """An exclusive ``fcntl`` lock beside the store file; the kernel drops it when the process dies."""

    def __init__(self, store_path: str | os.PathLike):
        self.path = Path(f"{os.path.realpath(store_path)}{LOCK_SUFFIX}")
        self._fh: TextIO | None = None

    def acquire(self, timeout_s: float = 0.0) -> None:
        try:
            fh = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise DatabaseError(f"cannot open the store's lock file {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip()[:200] or "another process"
                    fh.close()
                    raise StoreLockedError(
                        f"the embedded store {self.path.with_suffix('')} is in use by {holder}; only one process "
                        "may open it at a time. Wait for it to finish (or stop it); meanwhile `motif-screen status` "
                        "and `motif-screen query` read it without opening it. For several workers at once, use a "
                        "MongoDB server (`motif-screen init --mongodb-uri`)."
                    ) from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] not in ("", "-c") else "python"
        command = " ".join([program, *sys.argv[1:3]])[:120]
        fh.write(f"pid {os.getpid()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


# --- one open store per file per process -----------------------------------------------------------


class EmbeddedStore:
    """A store file opened by this process: its mongomock client, and the lock when writable."""

    def __init__(self, path: Path, client, lock: StoreLock | None, text: str | None = None):
        self.path = path
        self.client = client
        self.lock = lock
        self._file = {"text": text}  # what the file holds now, so an unchanged store is not rewritten
        if lock is not None:
            self._finalizer = weakref.finalize(self, _write_and_release, path, client, lock, self._file)

    @property
    def writable(self) -> bool:
        return self.lock is not None

    def flush(self) -> None:
        """Write the store now (atomically); a no-op for read-only views and unchanged stores."""
        if self.lock is None:
            return
        with _lock:
            _write_if_changed(self.path, self.client, self._file)

    def close(self) -> None:
        """Flush and release the lock (tests and long-lived processes); exit does this too."""
        if self.lock is not None:
            self._finalizer()


def _write_if_changed(path: Path, client, file_state: dict) -> None:
    text = json_util.dumps(dump(client))
    if text != file_state["text"]:
        _atomic_write(path, text)
        file_state["text"] = text


def _write_and_release(path: Path, client, lock: StoreLock, file_state: dict) -> None:
    try:
        _write_if_changed(path, client, file_state)
    finally:
        lock.release()
        _writers.pop(str(path), None)


def open_store(path: str | os.PathLike, *, writable: bool, lock_timeout_s: float = 0.0) -> EmbeddedStore:
    """This process's store for ``path``: writable (takes the lock, once per process) or a read-only view.

    A read-only view in a process that has the store open for writing is that store (fresher than
    the file); otherwise it is the file as last written, and it is never written back.
    """
    real = Path(os.path.realpath(Path(path).expanduser()))
    with _lock:
        store = _writers.get(str(real))
        if store is not None:
            return store
        if not writable:
            stat = real.stat() if real.is_file() else None
            stamp = (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)
            cached = _readers.get(str(real))
            if cached is None or cached[0] != stamp:
                cached = (stamp, EmbeddedStore(real, _new_client(read_store_file(real)), None))
                _readers[str(real)] = cached
            return cached[1]
        lock = StoreLock(real)
        lock.acquire(lock_timeout_s)
        try:
            text = real.read_text(encoding="utf-8") if real.is_file() else None
            content = read_store_file(real)
            client = _new_client(content)
        except BaseException:
            lock.release()
            raise
        store = EmbeddedStore(real, client, lock, text if content.get("format") == FORMAT else None)
        _writers[str(real)] = store
        return store


def writer(path: str | os.PathLike) -> EmbeddedStore | None:
    """The store this process holds open for writing at ``path``, if any."""
    return _writers.get(os.path.realpath(Path(path).expanduser()))


def flush(path: str | os.PathLike) -> None:
    store = writer(path)
    if store is not None:
        store.flush()


def close_all() -> None:
    """Flush and release every store this process opened (tests open many stores in one process)."""
    for store in list(_writers.values()):
        store.close()
    _writers.clear()
    _readers.clear()


# --- FireWorks and atomate on the same store ------------------------------------------------------


class FireWorksClient:
    """What ``FW_config.yaml``'s ``MongoClient`` names for the embedded store.

    monty turns the config's mapping into ``FireWorksClient.from_dict({"store": path})``; FireWorks
    then calls the result wherever it would call ``pymongo.MongoClient(host, port, ...)``.
    """

    def __init__(self, store: str, writable: bool = True):
        self.store = str(store)
        self.writable = writable  # False in read-only commands: they see the store, never lock or write it

    @classmethod
    def from_dict(cls, d: dict) -> FireWorksClient:
        if not isinstance(d, dict) or not d.get("store"):
            raise DatabaseError("FW_config.yaml's MongoClient names no embedded `store` file")
        return cls(d["store"])

    def as_dict(self) -> dict:
        return {"@module": __name__, "@class": type(self).__name__, "store": self.store}

    def __call__(self, *args, **kwargs):
        """A client on the shared store (host, port and credentials do not apply to a file)."""
        from motif_screen.settings import get_settings

        try:
            store = open_store(self.store, writable=self.writable, lock_timeout_s=get_settings().store_lock_timeout_s)
        except (StoreLockedError, DatabaseError) as exc:
            # lpad and rlaunch print a traceback for any exception but SystemExit; a refusal to
            # open a busy or broken store is an answer for the user, not a bug report
            raise SystemExit(f"motif_screen: {exc}") from None
        bind_clients(self)
        return store.client


def bind_clients(factory) -> None:
    """Point FireWorks' and atomate's client names, in modules already imported, at ``factory``.

    ``FW_config.yaml`` sets FireWorks' ``MongoClient`` for processes that read it at start-up; a
    process that imported FireWorks before it knew the store (tests, a ``--config-dir`` elsewhere)
    gets the same setting here. atomate's ``CalcDb`` takes no client class at all: its
    module-level ``MongoClient`` name is the one place to give ``VaspToDb`` the shared store.
    """
    for module_name, attr in CLIENT_NAMES.items():
        module = sys.modules.get(module_name)
        if module is not None:
            setattr(module, attr, factory)


def unbind_clients() -> None:
    """Give FireWorks and atomate back ``pymongo.MongoClient`` (a real MongoDB after an embedded one)."""
    import pymongo

    bind_clients(pymongo.MongoClient)
