"""The rest of A1111's /sdapi/v1 that clients call: styles, memory, flags, refreshes, script details, and
clear refusals for what Sfumato does not do over this API (interrogation, training).

Where Sfumato lacks the feature, a list route answers as A1111 does when it has none: an empty list of
the right shape, never a 404 body that a client would iterate as data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sfumato import __version__
from sfumato.core.errors import InvalidRequest
from sfumato.server.a1111.routes import ROUTE_PREFIX
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses


class PromptStyleItem(BaseModel):
    name: str
    prompt: str | None = None
    negative_prompt: str | None = None


class HypernetworkItem(BaseModel):
    name: str
    path: str | None = None


class ExtensionItem(BaseModel):
    name: str
    remote: str
    branch: str
    commit_hash: str
    version: str
    commit_date: int
    enabled: bool


class ScriptArg(BaseModel):
    label: str | None = None
    value: Any = None
    minimum: Any = None
    maximum: Any = None
    step: Any = None
    choices: list[str] | None = None


class ScriptInfo(BaseModel):
    name: str
    is_alwayson: bool = False
    is_img2img: bool = False
    args: list[ScriptArg] = Field(default_factory=list)


class MemoryResponse(BaseModel):
    ram: dict[str, Any] = Field(description="free, used (by the server process) and total, in bytes.")
    cuda: dict[str, Any] = Field(description="The CUDA allocator's numbers, or {'error': …} without CUDA.")


class TrainingRequest(BaseModel):
    model_config = {"extra": "allow"}


class InfoResponse(BaseModel):
    info: str


def _context(request: Request) -> ServerContext:
    return request.app.state.context


def _meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return values


def _rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def ram_numbers() -> dict[str, float]:
    """free (available to programs), used (by this server) and total RAM in bytes, as A1111 reports."""
    try:
        import psutil

        memory = psutil.virtual_memory()
        used = float(psutil.Process(os.getpid()).memory_info().rss)
        return {"free": float(memory.available), "used": used, "total": float(memory.total)}
    except ImportError:
        info = _meminfo()
        total = float(info.get("MemTotal", 0))
        return {
            "free": float(info.get("MemAvailable", info.get("MemFree", 0))),
            "used": float(_rss()),
            "total": total,
        }


def cuda_numbers() -> dict[str, Any]:
    if "torch" not in sys.modules:
        return {"error": "unavailable (no model has run yet)"}
    import torch

    if not torch.cuda.is_available():
        return {"error": "unavailable"}
    free, total = torch.cuda.mem_get_info()
    stats = dict(torch.cuda.memory_stats())

    def pair(name: str) -> dict[str, int]:
        return {
            "current": int(stats.get(f"{name}.all.current", 0)),
            "peak": int(stats.get(f"{name}.all.peak", 0)),
        }

    return {
        "system": {"free": free, "used": total - free, "total": total},
        "active": pair("active_bytes"),
        "allocated": pair("allocated_bytes"),
        "reserved": pair("reserved_bytes"),
        "inactive": pair("inactive_split_bytes"),
        "events": {"retries": int(stats.get("num_alloc_retries", 0)), "oom": int(stats.get("num_ooms", 0))},
    }


def command_flags(ctx: ServerContext) -> dict[str, Any]:
    """A1111's launch flags, as far as they have a meaning here; folders are never shown to clients."""
    settings = ctx.settings
    return {
        "api": True,
        "nowebui": True,
        "listen": ctx.config.listen not in ("127.0.0.1", "localhost", "::1"),
        "port": ctx.config.port,
        "api_auth": None,
        "api_log": False,
        "cors_allow_origins": ",".join(ctx.config.cors_origins) or None,
        "device_id": None,
        "precision": "full" if settings.precision == "fp32" else "autocast",
        "no_half": settings.precision == "fp32",
        "no_half_vae": False,
        "medvram": False,
        "lowvram": False,
        "xformers": False,
        "opt_sdp_attention": True,
        "disable_safe_unpickle": False,
        "skip_torch_cuda_test": False,
        "data_dir": None,
        "ckpt_dir": None,
        "vae_dir": None,
        "lora_dir": None,
        "embeddings_dir": None,
        "hypernetwork_dir": None,
        "styles_file": [],
        "version": f"sfumato {__version__}",
    }


def _script_infos() -> list[ScriptInfo]:
    directions = ["left", "right", "up", "down"]
    contents = ["fill", "original", "latent noise", "latent nothing"]
    poor = [
        ScriptArg(label="Pixels to expand", value=128, minimum=8, maximum=256, step=8),
        ScriptArg(label="Mask blur", value=4, minimum=0, maximum=64, step=1),
        ScriptArg(label="Masked content", value="fill", choices=contents),
        ScriptArg(label="Outpainting direction", value=directions, choices=directions),
    ]
    mk2 = [
        ScriptArg(
            label="Recommended settings: Sampling Steps: 80-100, Sampler: Euler a, Denoising strength: 0.8"
        ),
        ScriptArg(label="Pixels to expand", value=128, minimum=8, maximum=256, step=8),
        ScriptArg(label="Mask blur", value=8, minimum=0, maximum=64, step=1),
        ScriptArg(label="Outpainting direction", value=directions, choices=directions),
        ScriptArg(
            label="Fall-off exponent (lower=higher detail)", value=1.0, minimum=0.0, maximum=4.0, step=0.01
        ),
        ScriptArg(label="Color variation", value=0.05, minimum=0.0, maximum=1.0, step=0.01),
    ]
    sd_upscale = [
        ScriptArg(
            label="Will upscale the image by the selected scale factor; use width and height sliders to set tile size"
        ),
        ScriptArg(label="Tile overlap", value=64, minimum=0, maximum=256, step=16),
        ScriptArg(label="Upscaler", value="Lanczos", choices=["None", "Lanczos"]),
        ScriptArg(label="Scale Factor", value=2.0, minimum=1.0, maximum=4.0, step=0.05),
    ]
    xyz: list[ScriptArg] = []
    for axis in "XYZ":
        xyz += [
            ScriptArg(label=f"{axis} type", value="Nothing"),
            ScriptArg(label=f"{axis} values", value=""),
            ScriptArg(label=f"{axis} values", value=None),
        ]
    xyz += [
        ScriptArg(label="Draw legend", value=True),
        ScriptArg(label="Include Sub Images", value=False),
    ]
    return [
        ScriptInfo(name="x/y/z plot", args=xyz),
        ScriptInfo(name="x/y/z plot", is_img2img=True, args=xyz),
        ScriptInfo(name="poor man's outpainting", is_img2img=True, args=poor),
        ScriptInfo(name="outpainting mk2", is_img2img=True, args=mk2),
        ScriptInfo(name="sd upscale", is_img2img=True, args=sd_upscale),
    ]


def _unload(request: Request) -> None:
    run = getattr(request.app.state, "run", None)
    unload = getattr(run, "unload", None)
    if callable(unload):
        unload()


def build_router() -> APIRouter:
    router = APIRouter(tags=["A1111-compatible"], responses=error_responses(a1111=True))
    p = ROUTE_PREFIX

    @router.get(p + "/prompt-styles", response_model=list[PromptStyleItem])
    def prompt_styles(request: Request) -> list[PromptStyleItem]:
        from sfumato.server.a1111.prompt_styles import server_styles

        return [
            PromptStyleItem(name=s.name, prompt=s.prompt, negative_prompt=s.negative_prompt)
            for s in server_styles(_context(request).settings)
        ]

    @router.get(p + "/hypernetworks", response_model=list[HypernetworkItem])
    def hypernetworks() -> list[HypernetworkItem]:
        return []  # Sfumato does not load hypernetworks

    @router.get(p + "/sd-modules", response_model=list[dict[str, Any]])
    def sd_modules() -> list[dict[str, Any]]:
        return []  # separate text encoders/VAE modules (Forge's) are not offered here

    @router.get(p + "/extensions", response_model=list[ExtensionItem])
    def extensions() -> list[ExtensionItem]:
        return []

    @router.get(p + "/cmd-flags")
    def cmd_flags(request: Request) -> dict[str, Any]:
        return command_flags(_context(request))

    @router.get(p + "/memory", response_model=MemoryResponse)
    def memory() -> MemoryResponse:
        return MemoryResponse(ram=ram_numbers(), cuda=cuda_numbers())

    @router.get(p + "/script-info", response_model=list[ScriptInfo])
    def script_info() -> list[ScriptInfo]:
        return _script_infos()

    @router.post(p + "/refresh-embeddings")
    def refresh_embeddings(request: Request) -> None:
        _context(request).catalog.refresh()

    @router.post(p + "/unload-checkpoint")
    def unload_checkpoint(request: Request) -> dict[str, Any]:
        _unload(request)
        return {}

    @router.post(p + "/reload-checkpoint")
    def reload_checkpoint(request: Request) -> dict[str, Any]:
        # Models load on the next job that needs them; reloading means forgetting the loaded copy.
        _unload(request)
        _context(request).catalog.refresh()
        return {}

    refusal = error_responses(422, a1111=True)

    for kind in ("embedding", "hypernetwork"):
        _training_routes(router, kind, refusal)

    # A1111 serves its ping outside /sdapi/v1; its errors are Sfumato's (only /sdapi/ answers A1111's shape).
    internal = APIRouter(tags=["A1111-compatible"], responses=error_responses())

    @internal.get("/internal/ping")
    def ping() -> dict[str, Any]:
        return {}

    both = APIRouter()
    both.include_router(router)
    both.include_router(internal)
    return both


def _training_routes(router: APIRouter, kind: str, responses: dict[int | str, dict[str, Any]]) -> None:
    article = "an" if kind == "embedding" else "a"
    hint = (
        "Train a textual-inversion embedding with Sfumato's trainer (sfumato.training.textual_inversion)."
        if kind == "embedding"
        else "Sfumato does not use hypernetworks; train a LoRA or an embedding instead."
    )

    @router.post(f"{ROUTE_PREFIX}/create/{kind}", responses=responses, name=f"create_{kind}")
    def create(payload: TrainingRequest) -> InfoResponse:
        raise InvalidRequest(f"Creating {article} {kind} is not offered over the A1111 API here.", hint)

    @router.post(f"{ROUTE_PREFIX}/train/{kind}", responses=responses, name=f"train_{kind}")
    def train(payload: TrainingRequest) -> InfoResponse:
        raise InvalidRequest(f"Training {article} {kind} is not offered over the A1111 API here.", hint)
