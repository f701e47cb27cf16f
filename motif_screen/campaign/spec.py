"""What a discovery campaign is: a validated spec stored on the Campaign document.

Every Firetask of a campaign reads this spec from MongoDB by campaign name, so a workflow file
only needs the campaign name and the round; changing a campaign means changing one document.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from motif_screen import limits
from motif_screen.errors import InputError
from motif_screen.screening.targets import TargetSpec
from motif_screen.structures.motifs import parse_motif_filter

MAX_ROUNDS = 100  # every round's Fireworks are in the campaign workflow from the start
MAX_SEED = int(limits.SEED.high)  # numpy's seed range


class GenerationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["family", "prior", "guided", "constrained"] = Field(
        default="family",
        description="family: ABX3 perovskite-type formulas with prior latents; prior: the decoder also picks the "
        "composition; guided: head gradients on the latent; constrained: target.composition only",
    )
    scale: float = Field(default=0.5, gt=0, le=10, description="latent perturbation scale of later rounds")
    explore_after_first_round: bool = True  # later rounds explore around the best results so far
    flow_steps: int | None = Field(
        default=10, ge=1, le=1000, description="decoder integration steps (fewer: faster, slightly fewer valid)"
    )
    charge_balanced: bool = Field(
        default=True,
        description="prior/perturb/guided: decode only compositions that pass the SMACT charge-balance test",
    )
    decode_candidates: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="structures decoded per latent, the one the encoder maps closest "
        "to it kept (None: the model's setting; more: slower, more faithful)",
    )


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "perov5"
    version: int | None = None  # None: the latest promoted version


class AtomateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str | None = None  # None: follows the target (optimize+static / band structure)
    queue_options: dict | None = None


class CampaignSpec(BaseModel):
    """A campaign as users write it (YAML / CLI) and as the Firetasks read it back."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    target: TargetSpec
    budget: int = Field(ge=1, le=1_000_000, description="oracle calculations in total, controls included")
    rounds: int = Field(ge=1, le=MAX_ROUNDS)
    candidates_per_round: int = Field(default=1000, ge=1, le=int(limits.CANDIDATES_PER_ROUND.high))
    chunk_size: int = Field(
        default=1000,
        ge=1,
        le=int(limits.CHUNK_SIZE.high),
        description="candidates generated and assessed together; a round is cut into chunks of this size, so "
        "memory stays bounded and any split into shards gives the same round",
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="generation Fireworks per round (chunks are dealt to them in turn); any rlaunch worker can take "
        "one, and one selection Firework merges them",
    )
    shard_category: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="FireWorks _category of the generation shards (e.g. gpu): only workers of that category run them",
    )
    train_category: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="FireWorks _category of each round's collect-retrain-finish Firework",
    )
    control_fraction: float = Field(
        default=0.2,
        ge=0.0,
        le=0.5,
        description="share of each round's budget spent on random picks, to measure acceleration",
    )
    acquisition: Literal["ucb", "ei", "prob_hit"] = "ucb"
    kappa: float = Field(default=1.0, ge=0.0, le=1e6, allow_inf_nan=False, description="UCB exploration weight")
    motif: str | None = None  # e.g. "Ti:octahedral:O": only candidates with this motif are submitted
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    model: ModelRef = Field(default_factory=ModelRef)
    oracle: Literal["vasp", "chgnet"] = "vasp"
    atomate: AtomateSpec = Field(default_factory=AtomateSpec)
    chgnet_steps: int = Field(default=150, ge=0, le=5000)
    retrain_epochs: int = Field(default=30, ge=0, le=10_000)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("motif")
    @classmethod
    def _motif_parses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_motif_filter(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        if self.generation.mode == "constrained" and not self.target.composition:
            raise ValueError("constrained generation needs target.composition (e.g. 'Ba-Ti-O' or 'BaTiO3')")
        if self.shards > len(self.chunk_sizes()):
            raise ValueError(
                f"{self.shards} shards for {len(self.chunk_sizes())} chunks of a round: some shards would have nothing "
                "to do; lower shards or chunk_size"
            )
        if self.budget < self.rounds:
            raise ValueError(
                f"a budget of {self.budget} gives some of the {self.rounds} rounds no oracle calculation; "
                "raise the budget or lower the rounds"
            )
        return self

    def chunk_sizes(self) -> list[int]:
        """The size of every chunk of a round, in generation order."""
        full, rest = divmod(self.candidates_per_round, self.chunk_size)
        return [self.chunk_size] * full + ([rest] if rest else [])

    def shard_chunks(self, shard: int) -> list[int]:
        """The chunks generation shard ``shard`` computes: every ``shards``-th, starting at its own."""
        return list(range(shard, len(self.chunk_sizes()), self.shards))

    def round_budget(self, round_index: int) -> int:
        """Oracle calculations allowed in this round (the remainder goes to the last round)."""
        base = self.budget // self.rounds
        return base + (self.budget - base * self.rounds if round_index == self.rounds - 1 else 0)

    def control_count(self, round_budget: int) -> int:
        if self.control_fraction == 0 or round_budget < 2:
            return 0
        return max(1, round(round_budget * self.control_fraction))


def _finite(data, where: str = "campaign") -> None:
    """NaN and infinities never reach a stored spec, wherever they hide."""
    if isinstance(data, float) and not math.isfinite(data):
        raise InputError(f"invalid campaign: {where} is {data}, not a finite number")
    if isinstance(data, dict):
        for key, value in data.items():
            _finite(value, f"{where}.{key}" if where != "campaign" else str(key))
    elif isinstance(data, (list, tuple)):
        for k, value in enumerate(data):
            _finite(value, f"{where}[{k}]")


def parse_spec(data: dict) -> CampaignSpec:
    """Validate a campaign dict with one clear message per problem."""
    if not isinstance(data, dict):
        raise InputError("a campaign must be a mapping of settings")
    _finite(data)
    try:
        return CampaignSpec.model_validate(data)
    except InputError as exc:  # raised by TargetSpec itself
        raise InputError(f"invalid campaign: target: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'campaign'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise InputError(f"invalid campaign: {problems}") from None
