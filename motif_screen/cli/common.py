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
    group.add_argument(
        "--db-file", type=Path, default=None, help="atomate-style db.json (default: <config-dir>/db.json)"
    )
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


# what counts as a hit when --hit-below is not given: a strongly bound compound, or on/near the hull
DEFAULT_HIT_BELOW = {"formation_energy_per_atom": -2.0, "energy_above_hull": 0.1}


def add_campaign_options(
    parser: argparse.ArgumentParser, default_name: str, default_oracle: str, default_target: str
) -> None:
    """The options that define a campaign (shared by `run` and `workflow create`)."""
    from motif_screen import keys

    group = parser.add_argument_group("campaign")
    group.add_argument("--campaign", default=default_name, help=f"campaign name (default: {default_name})")
    group.add_argument("--spec", type=Path, help="campaign YAML (see workflows/README.md); replaces the options below")
    group.add_argument(
        "--target",
        choices=keys.KNOWN_PROPERTIES,
        default=default_target,
        help=f"property to optimise (default: {default_target}; energy_above_hull: distance to the convex hull "
        "of the chemical system in eV/atom, a hit is a (near-)stable phase)",
    )
    group.add_argument("--goal", choices=("minimize", "maximize", "range"), default="minimize")
    group.add_argument(
        "--hit-below",
        type=float,
        default=None,
        help="a hit has target <= this (minimize, range); default for minimize: "
        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_HIT_BELOW.items())
        + " eV/atom",
    )
    group.add_argument("--hit-above", type=float, default=None, help="a hit has target >= this (maximize, range)")
    group.add_argument("--candidates", type=int, default=1000, help="structures generated per round (default: 1000)")
    group.add_argument(
        "--shards",
        type=int,
        default=1,
        help="generation Fireworks per round, each a share of the round's chunks, for several rlaunch workers "
        "(default: 1)",
    )
    group.add_argument(
        "--chunk-size",
        type=int,
        default=1000,
        help="candidates generated, assessed and written together (bounds memory; default: 1000)",
    )
    group.add_argument("--budget", type=int, default=20, help="oracle calculations in total (default: 20)")
    group.add_argument("--rounds", type=int, default=2, help="rounds (default: 2)")
    group.add_argument(
        "--oracle",
        choices=keys.ORACLE_SOURCES,
        default=default_oracle,
        help=f"vasp (atomate workflows) or chgnet (local ML potential) (default: {default_oracle})",
    )
    group.add_argument(
        "--atomate-preset", default=None, help="atomate workflow for the oracle (default: follows the target)"
    )
    group.add_argument("--motif", default=None, help="only submit candidates with this motif, e.g. Ti:octahedral:O")
    group.add_argument("--chgnet-steps", type=int, default=100, help="CHGNet relaxation steps (default: 100)")
    group.add_argument(
        "--model",
        default="perov5",
        help="model name in the database; the shipped perov5 (ABX3 perovskites) and carbon24 (carbon "
        "allotropes, energy_per_atom head) register themselves on first use (default: perov5)",
    )
    group.add_argument(
        "--generation",
        choices=("family", "prior", "guided", "constrained"),
        default="family",
        help="how candidates are proposed: family = ABX3 perovskite formulas on prior latents (perovskite "
        "models); prior = the decoder also picks size and composition (any family, e.g. --model carbon24); "
        "guided = prior latents moved by the target head's gradient (default: family)",
    )
    group.add_argument("--seed", type=int, default=0)


def campaign_spec_from_args(args):
    """A validated CampaignSpec from --spec YAML or from the options."""
    import yaml

    from motif_screen.campaign.spec import parse_spec
    from motif_screen.errors import InputError

    if args.spec:
        try:
            data = yaml.safe_load(args.spec.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read campaign file {args.spec}: {exc}") from None
        return parse_spec(data)
    hit_below = (
        args.hit_below
        if args.hit_below is not None
        else (DEFAULT_HIT_BELOW.get(args.target) if args.goal == "minimize" else None)
    )
    upper = hit_below if args.goal in ("minimize", "range") else None
    lower = args.hit_above if args.goal in ("maximize", "range") else None
    return parse_spec(
        {
            "name": args.campaign,
            "target": {"property": args.target, "goal": args.goal, "upper": upper, "lower": lower},
            "budget": args.budget,
            "rounds": args.rounds,
            "candidates_per_round": args.candidates,
            "shards": args.shards,
            "chunk_size": args.chunk_size,
            "oracle": args.oracle,
            "chgnet_steps": args.chgnet_steps,
            "model": {"name": args.model},
            "generation": {"mode": args.generation},
            "seed": args.seed,
            "motif": args.motif,
            "atomate": {"preset": args.atomate_preset},
        }
    )


def writable_folder(path: Path, what: str, error=None) -> Path:
    """Create ``path`` if needed and check it can be written; one clear error (``error`` class) otherwise."""
    from motif_screen.errors import InputError

    error = error or InputError
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"cannot create the {what} {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise error(f"the {what} {path} is not writable")
    return path
