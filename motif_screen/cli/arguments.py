"""argparse types for bounded numbers: an out-of-range option is refused while the command line
is parsed, before any model is loaded or memory allocated, with the bound in the message."""

from __future__ import annotations

import argparse

from motif_screen.errors import InputError
from motif_screen.limits import Bound

__all__ = ["bounded"]


def bounded(bound: Bound):
    """An argparse ``type=`` that parses an option's text and checks it against ``bound``:
    ``parser.add_argument("--steps", type=bounded(limits.FLOW_STEPS))``."""

    def parse(text: str):
        try:
            return bound.check(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "integer" if bound.integer else "number"  # argparse names the type in its messages
    return parse
