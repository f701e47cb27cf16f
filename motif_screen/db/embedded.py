"""The embedded MongoDB stand-in: FireWorks' own mongomock file store, shared safely in a process.

FireWorks supports ``MONGOMOCK_SERVERSTORE_FILE`` (mongomock-persistence): every ``MongoClient``
loads the whole JSON file and writes it back when garbage-collected. Two clients in one process
therefore overwrite each other, a kill during the write leaves broken JSON, and two processes
clobber each other. This module fixes all three without changing any caller:

* one ``ServerStore`` per file per process — :func:`client_factory` hands out mongomock clients
  over that store, and :func:`install` binds it where FireWorks (``LaunchPad``) and atomate
  (``VaspCalcDb``) look up ``MongoClient``, also for modules imported later;
* :func:`flush` writes a temporary file and renames it, so the file is always whole;
* :class:`StoreLock` — an ``fcntl`` lock next to the file: a second writer gets a clear error.

With a real MongoDB none of this is active: the names keep pointing at ``pymongo.MongoClient``.
"""

from __future__ import annotations

import fcntl
import gc
import importlib.abc
import importlib.util
import os
import sys
import threading
from pathlib import Path

from motif_screen.errors import DatabaseError, StoreLockedError

STORE_ENV = "MONGOMOCK_SERVERSTORE_FILE"
# module -> attribute holding the MongoClient class it uses
_BIND_POINTS = {
    "fireworks.fw_config": "MongoClient",
    "fireworks.core.launchpad": "MongoClient",
    "atomate.utils.database": "MongoClient",
}

_lock = threading.RLock()
_stores: dict[str, object] = {}
_store_locks: dict[str, StoreLock] = {}


def store_file() -> str | None:
    """The embedded store this process uses, or None when talking to a real MongoDB."""
    path = os.environ.get(STORE_ENV)
    if path:
        return path
    fw_config = sys.modules.get("fireworks.fw_config")
    return getattr(fw_config, STORE_ENV, None) if fw_config else None


def init_store_file(path: str | os.PathLike) -> Path:
    """Create an empty store (``{}``) unless one exists; returns its absolute path."""
    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _atomic_write(path, "{}")
    return path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load_store(path: str):
    """The process's one ServerStore for ``path``: adopt a live one (e.g. the LaunchPad's) or load."""
    import mongomock_persistence  # noqa: F401  (patches mongomock's ServerStore with file I/O)
    from mongomock.store import ServerStore

    real = os.path.realpath(path)
    for obj in gc.get_objects():
        try:  # dead weakref proxies raise ReferenceError on any attribute access
            found = (
                type(obj) is ServerStore
                and os.path.realpath(getattr(obj, "_filename", "") or "") == real
                and getattr(getattr(obj, "_finalizer", None), "alive", False)  # opened by FireWorks, live
            )
        except ReferenceError:
            continue
        if found:
            store = obj
            break
    else:
        if not os.path.isfile(real):
            raise DatabaseError(f"embedded store {path} does not exist: run `motif-screen init` first")
        return _read_store(real)
    # A store FireWorks opened for writing (e.g. rlaunch's LaunchPad): keep it, write it atomically.
    store._finalizer.detach()
    _attach_writer(store, real)
    return store


def _read_store(path: str):
    """Load a store file ourselves (mongomock-persistence would prefer the env var's file)."""
    from bson import json_util
    from mongomock.store import DatabaseStore, ServerStore

    try:
        with open(path, encoding="utf-8") as fh:
            content = json_util.loads(fh.read())
    except (ValueError, TypeError) as exc:  # bson.json_util raises ValueError subclasses on bad JSON
        raise DatabaseError(f"embedded store {path} is not valid JSON ({exc}); restore it or re-run `motif-screen init`") from exc
    except OSError as exc:
        raise DatabaseError(f"embedded store {path} cannot be read: {exc.strerror}") from exc
    if not isinstance(content, dict):
        raise DatabaseError(f"embedded store {path} does not hold a JSON object")
    store = ServerStore.__new__(ServerStore)
    store._filename = path
    store._databases = {name: DatabaseStore.from_dict(db) for name, db in content.items()}
    store._finalizer = None  # written back only once this process holds the writer lock
    return store


def _attach_writer(store, path: str) -> None:
    import weakref

    if getattr(store, "_finalizer", None) is None or not store._finalizer.alive:
        store._finalizer = weakref.finalize(store, _flush_store, store, path)


def _flush_store(store, path: str) -> None:
    from bson import json_util

    _atomic_write(Path(path), json_util.dumps(store.to_dict()))


def get_store(path: str | None = None):
    path = path or store_file()
    if not path:
        raise DatabaseError("no embedded store is configured (MONGOMOCK_SERVERSTORE_FILE is not set)")
    real = os.path.realpath(path)
    with _lock:
        if real not in _stores:
            _stores[real] = _load_store(real)
        return _stores[real]


def client_factory(*args, **kwargs):
    """Drop-in for ``pymongo.MongoClient``: embedded store when configured, else a real client."""
    path = store_file()
    if path:
        import mongomock

        return mongomock.MongoClient(_store=get_store(path))
    import pymongo

    return pymongo.MongoClient(*args, **kwargs)


def flush(path: str | None = None) -> None:
    """Write the store to disk now (atomically) so a killed process loses as little as possible.

    Only a process holding the writer lock writes; read-only processes never touch the file.
    """
    path = path or store_file()
    if not path:
        return
    real = os.path.realpath(path)
    with _lock:
        store = _stores.get(real)
        if store is not None and real in _store_locks:
            _flush_store(store, real)


def _bind(module) -> None:
    attr = _BIND_POINTS.get(module.__name__)
    if attr and getattr(module, attr, None) is not client_factory:
        setattr(module, attr, client_factory)


class _BindAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Post-import hook: binds ``client_factory`` in FireWorks/atomate modules imported later."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _BIND_POINTS:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        self._loaders = getattr(self, "_loaders", {})
        self._loaders[fullname] = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loaders[spec.name].create_module(spec)

    def exec_module(self, module):
        self._loaders[module.__name__].exec_module(module)
        _bind(module)


_hook = _BindAfterImport()


def install() -> None:
    """Bind the shared factory now and for later imports. Idempotent, cheap, imports nothing."""
    if _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)
    for name in _BIND_POINTS:
        module = sys.modules.get(name)
        if module is not None:
            _bind(module)


class StoreLock:
    """An exclusive ``fcntl`` lock beside the store file, held for the life of the process."""

    def __init__(self, store_path: str | os.PathLike):
        self.path = Path(f"{os.path.realpath(store_path)}.lock")
        self._fh = None

    def acquire(self, timeout_s: float = 0.0) -> None:
        import time

        fh = open(self.path, "a+", encoding="utf-8")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    fh.close()
                    raise StoreLockedError(
                        f"the embedded store {self.path.with_suffix('')} is in use by {holder}; "
                        "it cannot merge two writers — wait for it to finish or stop it"
                    ) from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def acquire_writer_lock(path: str, timeout_s: float = 0.0) -> None:
    """Take (once per process) the writer lock for ``path``; from then on the store is written back."""
    real = os.path.realpath(path)
    with _lock:
        if real not in _store_locks:
            lock = StoreLock(real)
            lock.acquire(timeout_s)
            _store_locks[real] = lock
        _attach_writer(get_store(real), real)


def holds_writer_lock(path: str) -> bool:
    return os.path.realpath(path) in _store_locks


def reset_for_tests() -> None:
    """Forget every store and lock of this process (tests open many stores in one process)."""
    with _lock:
        for store in _stores.values():
            if getattr(store, "_finalizer", None) is not None:
                store._finalizer.detach()
        _stores.clear()
        for lock in _store_locks.values():
            lock.release()
        _store_locks.clear()
