"""One settings object: defaults < config file < SFUMATO_* environment < explicit overrides.

Loaded once by a face (CLI, server, app) and passed down; nothing reads it globally.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from sfumato.core.errors import InvalidSettings

APP = "sfumato"
MAX_CONFIG_BYTES = 1_000_000


def config_file() -> Path:
    """The config file: $SFUMATO_CONFIG, else config.toml in the platform's config folder."""
    override = os.environ.get("SFUMATO_CONFIG")
    return Path(override) if override else platformdirs.user_config_path(APP) / "config.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    """The config file's values ({} when there is none), or one clear error that names it."""
    try:
        if not path.is_file():
            return {}
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise InvalidSettings(
                f"The config file {path} is larger than {MAX_CONFIG_BYTES // 1000} KB.",
                "Is it the right file?",
            )
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        why = exc.strerror or str(exc)
    except UnicodeDecodeError:
        why = "it is not UTF-8 text"
    except tomllib.TOMLDecodeError as exc:
        why = f"it is not valid TOML ({exc})"
    except RecursionError:
        why = "it is nested too deeply"
    raise InvalidSettings(
        f"The config file {path} cannot be read: {why}.",
        "Fix it (see the README's Settings section) or point SFUMATO_CONFIG at another file.",
    )


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
    compile_unet: bool = Field(
        default=False,
        description="torch.compile the UNet with frozen weights: bf16 CPU steps ~1.18x faster after about "
        "a minute of compiling per picture size (docs/performance.md).",
    )
    vram_mode: Literal["normal", "medvram", "lowvram"] = Field(
        default="normal",
        description="GPUs with little VRAM: medvram moves whole model parts in as they run, lowvram layer by layer.",
    )
    preview_every: int = Field(default=5, ge=0, description="Steps between live previews; 0 = none.")
    max_canvas_side: int = Field(
        default=2048,
        ge=64,
        le=4096,
        description="Largest side an outpainted or upscaled picture may grow to, in pixels.",
    )
    blocklists: list[Path] = Field(
        default_factory=list,
        description="Name blocklists (docs/blocklist.md): prompts naming an entry are refused. Empty = off.",
    )
    clip_model: Path | None = Field(
        default=None,
        description="A CLIP for interrogation, search and the NSFW check (a transformers CLIP folder or a "
        "single .safetensors); default: the built-in demo CLIP.",
    )
    interrogate_lists: Path | None = Field(
        default=None,
        description="A folder of extra phrase lists (.txt, one phrase a line) for interrogation.",
    )
    captioner: Path | None = Field(
        default=None, description="A BLIP captioning model folder (transformers) for interrogation's caption."
    )
    tagger: Path | None = Field(
        default=None, description="A WD14-style ONNX tagger folder (model.onnx + selected_tags.csv)."
    )
    nsfw_filter: Literal["off", "blur", "withhold"] = Field(
        default="off", description="What to do with a picture the NSFW check flags: off, blur or withhold."
    )
    nsfw_concepts: list[str] = Field(
        default_factory=list,
        description="Concepts the CLIP-concept check flags (text; 'concept=threshold' sets its threshold).",
    )
    datasets: list[Path] = Field(
        default_factory=list,
        description="LAION-style datasets (clip-retrieval layout) the API may search, named by folder name.",
    )
    embed_on_save: bool = Field(
        default=False,
        description="Compute each picture's CLIP embedding when it is saved (concept search does it lazily otherwise).",
    )
    safety_checker: Path | None = Field(
        default=None, description="diffusers' StableDiffusionSafetyChecker folder, used by the NSFW check."
    )
    model_cache_bytes: int = Field(default=8 * 1024**3, ge=0, description="Budget for models kept loaded.")
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    token: str | None = Field(default=None, description="Access token required by the server when set.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the server."
    )
    workers: str = Field(
        default="1",
        description="Who runs the server's jobs: N in-process workers (default 1), 'remote' (only "
        "`sfumato worker`s on other machines), 'auto' (a local Ray) or 'ray://HOST:PORT' (a Ray cluster).",
    )
    ray_workers: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="Ray workers to start; 0 = one per GPU (one when there is none).",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            given = setting_sources(values)
            problems = "; ".join(_problem(error["loc"], error["msg"], given) for error in exc.errors()[:5])
            raise InvalidSettings(
                f"The settings are invalid: {problems}.",
                "Fix that value (`sfumato config` shows every setting and where it comes from).",
            ) from None
        except SettingsError as exc:  # a SFUMATO_* list or mapping that is not JSON
            field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "a setting"
            raise InvalidSettings(
                f"The settings are invalid: {env_name(field)} is not valid JSON.",
                f'Lists are given as JSON, e.g. {env_name(field)}=\'["/path/one", "/path/two"]\'.',
            ) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file()
        values = read_config_file(path)
        check_config_keys(values, path)
        config = InitSettingsSource(settings_cls, init_kwargs=values)
        return init_settings, env_settings, config

    @property
    def outputs(self) -> Path:
        return self.output_dir if self.output_dir is not None else self.data_dir / "outputs"

    @property
    def index_path(self) -> Path:
        return self.data_dir / "index.sqlite"


def env_name(field: str) -> str:
    return f"SFUMATO_{field.upper()}"


def check_config_keys(values: dict[str, Any], path: Path) -> None:
    """A key the settings do not have is a typo until shown otherwise: name it and the closest one."""
    known = list(Settings.model_fields)
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"The settings are: {', '.join(known)}."
            raise InvalidSettings(f"The config file {path} has an unknown setting {key!r}.", hint)


def setting_sources(given: dict[str, Any] | None = None) -> dict[str, str]:
    """Where each setting's value comes from, in the order they win: given, environment, config file,
    default."""
    environment = {name.upper() for name in os.environ}
    try:
        from_file = read_config_file(config_file())
    except InvalidSettings:
        from_file = {}
    sources: dict[str, str] = {}
    for field in Settings.model_fields:
        if given and field in given:
            sources[field] = "given"
        elif env_name(field) in environment:
            sources[field] = env_name(field)
        elif field in from_file:
            sources[field] = str(config_file())
        else:
            sources[field] = "default"
    return sources


def _problem(loc: tuple[Any, ...], message: str, sources: dict[str, str]) -> str:
    field = str(loc[0]) if loc else "settings"
    where = sources.get(field)
    origin = f" (from {where})" if where and where != "default" else ""
    return f"{'.'.join(str(p) for p in loc) or 'settings'}: {message}{origin}"
