"""Files written where the user asked and nowhere else, with names that may come from data.

A formula stored in a shared MongoDB is data anyone with write access chose: ``/../../x`` must
not become a path. Three rules:

* a file name built from data is :func:`file_name` (ASCII letters, digits, ``_+-.``; never
  ``/``, ``..``, a leading dot or a control character; bounded length) — and every name given to
  :class:`OutputFolder` must pass :func:`check_name`, i.e. be one path component, so the file
  lands inside the folder by construction;
* inside the folder nothing is followed: sub-folders are opened with ``O_NOFOLLOW`` relative to
  the folder's descriptor, and files are written to a new temporary name (``O_EXCL``) and renamed
  over the target, which replaces a planted symbolic link instead of writing through it;
* the folder the user named is theirs: a link there is followed, as any Unix tool does.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path

from motif_screen.errors import InputError
from motif_screen.messages import quoted

__all__ = [
    "MAX_SLUG_CHARS",
    "MAX_NAME_BYTES",
    "slug",
    "file_name",
    "check_name",
    "kind_of",
    "OutputFolder",
    "replaced_file",
]

MAX_SLUG_CHARS = 64  # one part of a name (a formula); ids are kept whole up to the same length
MAX_NAME_BYTES = 200  # below the usual 255-byte limit, leaving room for the temporary-name affixes

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_+\-.]+")
_DOTS = re.compile(r"\.{2,}")
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_KINDS = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symbolic link",
}


def slug(text, max_chars: int = MAX_SLUG_CHARS, fallback: str = "x") -> str:
    """A safe file-name part from any text: unsafe characters become ``_``, runs of dots become
    ``_``, leading dots/dashes/underscores go, at most ``max_chars`` characters."""
    text = _DOTS.sub("_", _UNSAFE_CHARS.sub("_", str(text)))
    text = text.lstrip("._-")[:max_chars].rstrip(".")
    return text or fallback


def check_name(name: str) -> str:
    """``name`` if it is one safe path component, else InputError."""
    problem = None
    if not isinstance(name, str) or not name:
        problem = "is empty"
    elif "/" in name or "\\" in name:
        problem = "contains a path separator"
    elif name.startswith("."):
        problem = "starts with a dot"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "contains control characters"
    elif len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        problem = f"is longer than {MAX_NAME_BYTES} bytes"
    if problem:
        raise InputError(
            f"file name {quoted(name)} {problem}; names written inside a folder must be one plain path component."
        )
    return name


def file_name(*parts, suffix: str = "", max_chars: int = MAX_SLUG_CHARS) -> str:
    """``part1_part2...suffix`` from data (a formula, an id), each part made safe by :func:`slug`
    and cut to ``max_chars``: ``file_name("/../../x", "65a1f0", suffix=".cif") == "x_65a1f0.cif"``."""
    return check_name("_".join(slug(p, max_chars) for p in parts) + suffix)


def kind_of(mode: int) -> str:
    """``"a FIFO (named pipe)"``, ``"a folder"``, ... for an ``st_mode``."""
    return _KINDS.get(stat.S_IFMT(mode), "a special file")


def _error(action: str, path, exc: OSError) -> InputError:
    return InputError(f"cannot {action} {path}: {exc.strerror or exc}")


class OutputFolder:
    """A folder that files are written into by name, never outside it (see the module docstring).

    ``OutputFolder(path)`` creates the folder if needed; one clear InputError when ``path`` is a
    file, a device or a FIFO, or cannot be created or written. Use as a context manager (or call
    :meth:`close`) to release the folder's descriptor.
    """

    def __init__(self, path, what: str = "output folder", create: bool = True, _fd: int | None = None):
        self._fd = None  # set first: __del__ runs even when opening fails
        self.path = Path(path)
        self.what = what
        self._fd = _fd if _fd is not None else self._open(create)

    def _open(self, create: bool) -> int:
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise _error(f"use the {self.what}", self.path, exc) from None
        if mode is not None and not stat.S_ISDIR(mode):
            raise InputError(f"the {self.what} {self.path} is {kind_of(mode)}, not a folder.")
        if mode is None:
            if not create:
                raise InputError(f"the {self.what} {self.path} does not exist.")
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _error(f"create the {self.what}", self.path, exc) from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise InputError(f"the {self.what} {self.path} is not writable.")
        try:
            return os.open(self.path, _OPEN_DIR)
        except OSError as exc:
            raise _error(f"open the {self.what}", self.path, exc) from None

    # -- life cycle -----------------------------------------------------------------------------
    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()

    # -- contents -------------------------------------------------------------------------------
    def subfolder(self, name: str) -> OutputFolder:
        """The sub-folder ``name`` (created if missing); a symbolic link or a file there is refused."""
        check_name(name)
        try:
            os.mkdir(name, dir_fd=self._fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise _error("create", self.path / name, exc) from None
        try:
            fd = os.open(name, _OPEN_DIR | os.O_NOFOLLOW, dir_fd=self._fd)
        except OSError as exc:
            kind = self._kind(name)
            raise InputError(f"{self.path / name} is {kind}, not a folder; refusing to write through it.") from exc
        return OutputFolder(self.path / name, self.what, _fd=fd)

    def _kind(self, name: str) -> str | None:
        try:
            return kind_of(os.stat(name, dir_fd=self._fd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return None

    def is_file(self, name: str) -> bool:
        """Whether ``name`` is a regular file here (a symbolic link is not)."""
        return self._kind(check_name(name)) == kind_of(stat.S_IFREG)

    def names(self) -> list[str]:
        return sorted(os.listdir(self._fd))

    def write(self, name: str, data: str | bytes, mode: int = 0o644) -> Path:
        """Write ``data`` (text as UTF-8) to ``name``: a new temporary file in this folder, renamed
        over ``name``. Returns the written path."""
        check_name(name)
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        tmp = f".{name}.{secrets.token_hex(4)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(tmp, flags, mode, dir_fd=self._fd)
        except OSError as exc:
            raise _error("write", self.path / name, exc) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
        except BaseException as exc:
            self._unlink(tmp)
            if isinstance(exc, OSError):
                raise _error("write", self.path / name, exc) from None
            raise
        return self.path / name

    def remove(self, name: str) -> bool:
        """Delete the file (or link) ``name``; a link is removed, never its target. False if absent."""
        return self._unlink(check_name(name))

    def _unlink(self, name: str) -> bool:
        try:
            os.unlink(name, dir_fd=self._fd)
        except FileNotFoundError:
            return False
        return True


@contextmanager
def replaced_file(path, what: str = "output file"):
    """Yield a temporary path beside ``path`` (same suffix) for a writer that takes a path
    (matplotlib, pymatgen); renamed over ``path`` when the block succeeds, deleted otherwise.

    A folder, FIFO or device at ``path`` is refused before anything is written.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _error(f"use the {what}", path, exc) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(
            f"the {what} {path} is a folder; give a file name inside it, "
            f"e.g. {path / ('plot' + (path.suffix or '.png'))}."
        )
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"the {what} {path} is {kind_of(mode)}, not a regular file.")
    with OutputFolder(path.parent if str(path.parent) else ".", what=f"folder of the {what}") as folder:
        check_name(path.name)
        tmp = f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=folder._fd))
        except OSError as exc:
            raise _error("write", path, exc) from None
        try:
            yield folder.path / tmp
            os.replace(tmp, path.name, src_dir_fd=folder._fd, dst_dir_fd=folder._fd)
        except BaseException as exc:
            folder._unlink(tmp)
            if isinstance(exc, OSError):
                raise _error("write", path, exc) from None
            raise
