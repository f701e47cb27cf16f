"""Quoting user input inside one-line error messages.

A message that echoes its input whole is unreadable when the input is a 100,000-character
formula or a file pasted into an option, and a newline in it breaks the "one line" promise of
the CLI. :func:`shorten` keeps the start and the end of a long text with the total length, and
:func:`one_line` folds line breaks.
"""

from __future__ import annotations

import re

__all__ = ["MAX_QUOTED_CHARS", "MAX_MESSAGE_CHARS", "shorten", "quoted", "one_line"]

MAX_QUOTED_CHARS = 200  # a user value inside a message
MAX_MESSAGE_CHARS = 1_000  # a whole message (the CLI's last line of defence)

_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def shorten(text, limit: int = MAX_QUOTED_CHARS) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and end around
    ``…[N characters in all]…``."""
    text = str(text)
    if len(text) <= limit:
        return text
    marker = f"…[{len(text):,} characters in all]…"
    keep = max(limit - len(marker), 2)
    head = keep - keep // 3
    return text[:head] + marker + text[len(text) - keep // 3 :]


def quoted(value, limit: int = MAX_QUOTED_CHARS) -> str:
    """``repr`` of a user value for a message, shortened to about ``limit`` characters."""
    return shorten(repr(value), limit)


def one_line(message, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A message folded onto one line (line breaks become ``" / "``) and shortened to ``limit``."""
    return shorten(_LINE_BREAKS.sub(" / ", str(message).strip()), limit)
