"""One settings object: defaults < config file < SFUMATO_* environment < explicit overrides.

Loaded once by a face (CLI, server, app) and passed down; nothing reads it globally.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

APP = "sfumato"


def config_file() -> Path:
    """The config file: $SFUMATO_CONFIG, else config.toml in the platform's config folder."""
    override = os.environ.get("SFUMATO_CONFIG")
    return Path(override) if override else platformdirs.user_config_path(APP) / "config.toml"


def _data_dir() -> Path:
    return platformdirs.user_data_path(APP)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SFUMATO_", extra="ignore", validate_assignment=True)

    data_dir: Path = Field(default_factory=_data_dir, description="Index, caches and job queue.")
    output_dir: Path | None = Field(
        default=None, description="Where pictures are saved; default <data_dir>/outputs."
    )
    model_folders: list[Path] = Field(default_factory=list, description="Folders searched for models.")
    default_model: str | None = Field(default=None, description="Model used when a request names none.")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N or mps.")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    preview_every: int = Field(default=5, ge=0, description="Steps between live previews; 0 = none.")
    max_canvas_side: int = Field(
        default=2048,
        ge=64,
        le=4096,
        description="Largest side an outpainted or upscaled picture may grow to, in pixels.",
    )
    model_cache_bytes: int = Field(default=8 * 1024**3, ge=0, description="Budget for models kept loaded.")
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    token: str | None = Field(default=None, description="Access token required by the server when set.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the server."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file())

    @property
    def outputs(self) -> Path:
        return self.output_dir if self.output_dir is not None else self.data_dir / "outputs"

    @property
    def index_path(self) -> Path:
        return self.data_dir / "index.sqlite"
