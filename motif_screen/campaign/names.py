"""The names of a campaign's step Fireworks: what ``lpad get_fws -n`` and ``lpad rerun_fws -n`` take."""

from __future__ import annotations


def step_name_prefix(campaign: str) -> str:
    """What the name of every step Firework of ``campaign`` starts with (oracle Fireworks are named otherwise)."""
    return f"motif_screen {campaign} r"


def fw_name(campaign: str, round_index: int, step: str) -> str:
    return f"{step_name_prefix(campaign)}{round_index} {step}"


def generate_step(shard: int, shards: int) -> str:
    """The step name of generation shard ``shard`` (0-based) of ``shards``: ``generate`` when there is one."""
    return "generate" if shards == 1 else f"generate {shard + 1}/{shards}"
