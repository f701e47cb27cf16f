"""One settings object for the whole plugin.

Precedence (highest first): keyword arguments, ``MOTIF_SCREEN_*`` environment variables, the YAML
file named by ``MOTIF_SCREEN_CONFIG`` (else ``motif_screen.yaml`` in the working directory), then
the defaults below. Per-machine values that Fireworks carry to workers stay atomate-style
placeholders (``">>db_file<<"``) and are resolved there by ``env_chk`` — see
:func:`resolve_placeholder`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ENV_PREFIX = "MOTIF_SCREEN_"
YAML_ENV = "MOTIF_SCREEN_CONFIG"
YAML_DEFAULT_NAME = "motif_screen.yaml"

DB_FILE_PLACEHOLDER = ">>db_file<<"
VASP_CMD_PLACEHOLDER = ">>vasp_cmd<<"


def _yaml_path() -> Path | None:
    explicit = os.environ.get(YAML_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{YAML_ENV}={explicit} does not name a readable file")
        return path
    local = Path.cwd() / YAML_DEFAULT_NAME
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Every tunable of motif_screen; field docs say what each one decides."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    config_dir: Path = Field(
        default_factory=Path.cwd,
        description="Folder holding my_launchpad.yaml, my_fworker.yaml, db.json and FW_config.yaml.",
    )
    db_file: Path | None = Field(default=None, description="atomate-style db.json; defaults to <config_dir>/db.json.")
    connect_timeout_ms: int = Field(
        default=5000, ge=100, description="How long to wait for a MongoDB server before failing."
    )
    store_lock_timeout_s: float = Field(
        default=0.0, ge=0.0, description="How long to wait for another process holding the embedded store."
    )
    device: str = Field(default="cpu", description="torch device for models.")
    num_threads: int | None = Field(default=None, ge=1, description="torch intra-op threads.")
    model_dir: Path | None = Field(
        default=None, description="Where new checkpoints are written; defaults to <config_dir>/models."
    )
    report_dir: Path | None = Field(
        default=None, description="Where `motif-screen run` writes its report; <config_dir>/report."
    )
    progress: bool = Field(default=True, description="Show tqdm progress bars on long work.")
    seed: int = Field(default=0, description="Seed for every random draw that is not given one.")

    @field_validator("config_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def db_path(self) -> Path:
        return (self.db_file or self.config_dir / "db.json").expanduser()

    @property
    def models_path(self) -> Path:
        return (self.model_dir or self.config_dir / "models").expanduser()

    @property
    def report_path(self) -> Path:
        return (self.report_dir or self.config_dir / "report").expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_path = _yaml_path()
        if yaml_path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after env changes)."""
    return Settings()


def resolve_placeholder(value: Any, fw_spec: dict, default: Any = None) -> Any:
    """atomate's ``env_chk``: ``">>key<<"`` becomes the FWorker env value on the worker."""
    if isinstance(value, str) and value.startswith(">>") and value.endswith("<<"):
        key = value[2:-2]
        env = fw_spec.get("_fw_env", {})
        if key not in env:
            if default is not None:
                return default
            raise KeyError(f"{value} is not set on this worker: add `{key}` under `env:` in my_fworker.yaml")
        return env[key]
    return value
