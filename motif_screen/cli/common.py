"""Options and helpers shared by the verbs that talk to the database."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_db_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("database")
    group.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="folder written by `motif-screen init` (default: $MOTIF_SCREEN_CONFIG_DIR or the current folder)",
    )
    group.add_argument("--db-file", type=Path, default=None, help="atomate-style db.json (default: <config-dir>/db.json)")
    group.add_argument(
        "--mongodb-uri",
        default=None,
        help="connect to this MongoDB URI instead of db.json (default: $MOTIF_SCREEN_MONGODB_URI)",
    )


def settings_from_args(args):
    from motif_screen.settings import Settings

    overrides = {}
    if getattr(args, "config_dir", None):
        overrides["config_dir"] = args.config_dir
    if getattr(args, "db_file", None):
        overrides["db_file"] = args.db_file
    return Settings(**overrides)


def connect_from_args(args, readonly: bool):
    from motif_screen.db import connect

    settings = settings_from_args(args)
    uri = getattr(args, "mongodb_uri", None) or os.environ.get("MOTIF_SCREEN_MONGODB_URI")
    return connect(settings.db_path if not uri else None, uri=uri, readonly=readonly, settings=settings), settings
