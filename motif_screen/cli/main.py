"""``motif-screen``: one entry point, one module per verb (``motif_screen/cli/<verb>.py``).

Each verb module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``
and imports heavy libraries (torch, atomate) only inside ``run`` so that ``--help`` stays fast.

Every error a user can cause is one line on stderr and exit status 2: usage errors (argparse,
without the usage block) and :class:`~motif_screen.errors.MotifScreenError` from any verb, with
long quoted input shortened (:func:`motif_screen.messages.one_line`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from motif_screen.errors import MotifScreenError
from motif_screen.messages import one_line

VERBS = (
    "init",
    "run",
    "status",
    "collect",
    "query",
    "references",
    "train",
    "label",
    "generate",
    "plot",
    "workflow",
)

DESCRIPTION = """\
Propose, pre-screen and hand off hypothetical structures with an e3nn equivariant autoencoder,
on FireWorks + MongoDB. Start with `motif-screen init` (embedded store, no server needed), then
`motif-screen run` for a whole demo campaign; `motif-screen query` and `status` read the results.
"""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (the usage block is what ``--help`` is for)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _load_verbs() -> dict:
    modules = {}
    for verb in VERBS:
        try:
            modules[verb] = importlib.import_module(f"motif_screen.cli.{verb}")
        except ModuleNotFoundError as exc:
            if exc.name != f"motif_screen.cli.{verb}":
                raise
    return modules


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = _Parser(prog="motif-screen", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    from motif_screen import __version__

    parser.add_argument("--version", action="version", version=f"motif-screen {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    modules = _load_verbs()
    for verb, module in modules.items():
        p = sub.add_parser(
            verb,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2
        return int(exc.code or 0)
    if not args.verb:
        parser.print_help()
        return 2
    try:
        return int(modules[args.verb].run(args) or 0)
    except MotifScreenError as exc:
        print(f"motif-screen {args.verb}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"motif-screen {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
