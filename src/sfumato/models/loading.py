"""Load Stable Diffusion checkpoints fully offline: single files (original layout) and diffusers folders.

Single files are read with safetensors only, their keys normalised (A1111/ComfyUI variants, old and
new CLIP layouts), then each component is built from the shipped config folder with diffusers'
converters. Nothing here downloads, and nothing here unpickles.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sfumato.core.errors import CorruptModelFile, ModelNotFound, NoModelConfigured, UnsupportedModel
from sfumato.core.result import ModelInfo
from sfumato.models.components import Components
from sfumato.models.cpu_speed import cpu_dtype
from sfumato.models.device import resolve_device, resolve_dtype
from sfumato.models.folder_parts import diffusers_part, transformers_part
from sfumato.models.identify import (
    REFINER_CLIP_G,
    SD1_CLIP,
    SD2_CLIP,
    SDXL_CLIP_G,
    SDXL_CLIP_L,
    Identity,
    identify_file,
    identify_header,
)
from sfumato.models.ldm_parts import clip_from_ldm, missing_weights, unet_from_ldm
from sfumato.models.offload import apply_vram_mode
from sfumato.models.preview_decoder import find_preview_decoder, load_preview_decoder
from sfumato.models.safety import (
    FileFormat,
    load_checked_safetensors,
    read_model_config,
    read_safetensors_header,
    sniff_format,
    unsafe_error,
)

if TYPE_CHECKING:
    import torch

    from sfumato.core.settings import Settings
    from sfumato.models.cache import ModelCache

T = TypeVar("T")

WEIGHT_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin")


def config_folder(name: str) -> Path:
    """A shipped diffusers-layout config folder (JSON only): sd1, sd1-inpainting, sd2-512, sd2-768-v, sdxl…"""
    folder = Path(str(files("sfumato.models").joinpath("configs", name)))
    if not (folder / "model_index.json").is_file():
        raise UnsupportedModel(f"No shipped configuration named {name!r}.")
    return folder


BUILTIN_MODEL = "sfumato-demo"  # the shipped demo model's name in listings and metadata


def demo_model_folder() -> Path:
    # Found by path, not by importing sfumato.demo: models sits below demo in the layers.
    return Path(str(files("sfumato"))) / "demo" / "model"


def load_model(
    settings: Settings,
    name: str | None = None,
    *,
    vae: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    prediction: str | None = None,
    cache: ModelCache | None = None,
) -> Components:
    """Load the model ``name`` (a path, a library name, ``name [hash]`` or a hash) ready to run.

    ``name`` None means ``settings.default_model``, then the shipped demo model. With ``cache``,
    a model already loaded is reused and switching releases what no longer fits the budget.
    """
    from sfumato.models.library import ModelLibrary

    library = ModelLibrary(settings)
    path = resolve_model_path(settings, name, library)
    vae_path = _resolve_vae(vae, library) if vae else None
    target = resolve_device(str(device) if device is not None else settings.device)
    want = dtype if dtype is not None else resolve_dtype(settings.precision, target)
    precision_notes: list[str] = []
    if target.type == "cpu":
        want = cpu_dtype(want, precision_notes)

    def load() -> Components:
        import torch

        model_hash = None if path.is_dir() else library.hash_file(path)
        vae_hash = library.hash_file(vae_path) if vae_path else None
        # Offloaded parts load into system memory: loading to a small GPU first is what fails.
        offloaded = settings.vram_mode != "normal" and target.type != "cpu"
        components = load_checkpoint(
            path,
            vae_path=vae_path,
            device=torch.device("cpu") if offloaded else target,
            dtype=want,
            prediction=prediction,
        )
        apply_vram_mode(components, settings.vram_mode, target)
        if settings.compile_unet:
            from sfumato.models.compiled_unet import compile_unet

            compile_unet(components)
        components.notes.extend(precision_notes)
        preview_file = find_preview_decoder(settings, sdxl=components.is_sdxl)
        if preview_file is None and path == demo_model_folder():
            preview_file = demo_preview_folder() if demo_preview_folder().is_dir() else None
        if preview_file is not None:
            try:
                components.preview_decoder = load_preview_decoder(preview_file)
            except CorruptModelFile as exc:  # previews fall back to the linear one; the job goes on
                components.notes.append(f"Live previews use the linear preview: {exc}")
        components.info = ModelInfo(
            name=BUILTIN_MODEL if path == demo_model_folder() else components.info.name,
            hash=model_hash,
            vae_name=vae_path.stem if vae_path else None,
            vae_hash=vae_hash,
            architecture=components.info.architecture,
        )
        if settings.precision == "fp16" and target.type == "cpu":
            components.notes.append(
                "fp16 is not used on the CPU; the model runs in fp32 (ask for bf16 instead)."
            )
        return components

    if cache is None:
        return load()
    key = (
        str(path.resolve()),
        str(vae_path.resolve()) if vae_path else "",
        str(target),
        str(want),
        prediction or "",
        settings.vram_mode,
        settings.compile_unet,
    )
    return cache.get(key, load, estimate=_estimate_bytes(path, want))


def demo_preview_folder() -> Path:
    """The demo model's own preview decoder (made by training/preview_recipe.py)."""
    return Path(str(files("sfumato"))) / "demo" / "preview"


def resolve_model_path(settings: Settings, name: str | None, library: Any = None) -> Path:
    if name is None:
        name = settings.default_model
    if name is None:
        demo = demo_model_folder()
        if (demo / "unet" / "config.json").is_file():
            return demo
        raise NoModelConfigured(
            "No model is configured and the demo model is not installed.",
            "Name one with `--model PATH`, set SFUMATO_DEFAULT_MODEL=PATH, or add your model folder with "
            "`sfumato models add-folder PATH` (an AUTOMATIC1111 or ComfyUI folder works as it is).",
        )
    candidate = Path(name).expanduser()
    if candidate.exists():
        return candidate
    if library is None:
        from sfumato.models.library import ModelLibrary

        library = ModelLibrary(settings)
    found = library.resolve("checkpoint", name)
    if found is None:
        raise ModelNotFound(
            f"No model called {name!r} in the configured folders.",
            "Run `sfumato models list` to see the names, or give the file's path.",
        )
    return found


def _resolve_vae(name: str, library: Any) -> Path:
    candidate = Path(name).expanduser()
    if candidate.exists():
        return candidate
    found = library.resolve("vae", name)
    if found is None:
        raise ModelNotFound(
            f"No VAE called {name!r} in the configured folders.", "Run `sfumato models list`."
        )
    return found


def _estimate_bytes(path: Path, dtype: torch.dtype) -> int:
    import torch

    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*.safetensors"))
    else:
        size = path.stat().st_size
    # files are usually fp16; fp32 weights take twice that
    return size * 2 if dtype == torch.float32 else size


def load_checkpoint(
    path: Path,
    *,
    vae_path: Path | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    prediction: str | None = None,
    config_dir: Path | None = None,
) -> Components:
    """Load a single-file checkpoint or a diffusers folder. ``config_dir`` overrides the shipped config."""
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # Their per-shard progress bars would interleave with ours; Sfumato reports progress itself.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    dtype = dtype or torch.float32
    if path.is_dir():
        components = load_diffusers_folder(path, dtype=dtype, prediction=prediction)
        if vae_path is not None:
            components.vae = load_vae(vae_path, path / "vae", dtype=dtype)
    else:
        components = load_single_file(
            path, dtype=dtype, prediction=prediction, config_dir=config_dir, vae_path=vae_path
        )
    _to_device(components, torch.device(device))
    return components


def load_single_file(
    path: Path,
    *,
    dtype: torch.dtype,
    prediction: str | None = None,
    config_dir: Path | None = None,
    vae_path: Path | None = None,
) -> Components:
    header, tensors = load_checked_safetensors(path)
    identity = identify_header(header, name=path.name, prediction=prediction)
    if identity.kind != "checkpoint":
        raise UnsupportedModel(
            f"{path.name} is a {identity.kind}, not a Stable Diffusion checkpoint.",
            "Choose a checkpoint as the model (a VAE goes in --vae; LoRAs and embeddings go in the prompt).",
        )
    config = config_dir or config_folder(identity.config_name)
    state = normalise_keys(tensors)
    del tensors
    try:
        unet = unet_from_ldm(state, config / "unet", dtype=dtype, in_channels=identity.in_channels)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise _mismatch(path, identity, exc) from exc
    if vae_path is not None:
        vae = load_vae(vae_path, config / "vae", dtype=dtype)
    elif identity.has_vae:
        vae = _vae_from_state(state, config / "vae", dtype, path.name)
    else:
        raise UnsupportedModel(
            f"{path.name} has no VAE inside it.",
            "Choose a VAE for it with --vae NAME (see `sfumato models list`).",
        )
    encoders = _text_encoders(state, identity, config, dtype, path)
    _check_loaded(path, unet, vae, *encoders)
    scheduler = _json(config / "scheduler" / "scheduler_config.json")
    scheduler["prediction_type"] = identity.prediction
    if "ztsnr" in header.tensors:
        scheduler["rescale_betas_zero_snr"] = True
    components = _assemble(unet, vae, encoders, identity, scheduler, path.stem)
    del state
    return components


def normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One key layout for the variants A1111, ComfyUI and old/new transformers save."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("model_ema.") or key.endswith("position_ids"):
            continue  # inference uses the non-EMA weights, as A1111 does; position ids are rebuilt
        for prefix in (SD1_CLIP, SDXL_CLIP_L):
            if key.startswith(prefix) and not key.startswith(prefix + "text_model."):
                # transformers < 4.x saves and >= 5.6 flattens CLIPTextModel without ``text_model.``
                key = prefix + "text_model." + key[len(prefix) :]
        out[key] = value
    return out


def _text_encoders(
    state: dict[str, torch.Tensor], identity: Identity, config: Path, dtype: torch.dtype, path: Path
) -> tuple[Any, Any]:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    def build(cls: Any, prefix: str, subfolder: str) -> Any:
        if not any(k.startswith(prefix) for k in state):
            raise CorruptModelFile(
                f"{path.name} lacks its text encoder weights ({prefix}…).",
                "The file is incomplete; get a full checkpoint.",
            )
        try:
            return clip_from_ldm(cls, state, prefix, config / subfolder, dtype=dtype)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise _mismatch(path, identity, exc) from exc

    arch = identity.architecture
    if arch == "sd1":
        return build(CLIPTextModel, SD1_CLIP, "text_encoder"), None
    if arch == "sd2":
        return build(CLIPTextModel, SD2_CLIP, "text_encoder"), None
    if arch == "sdxl":
        return (
            build(CLIPTextModel, SDXL_CLIP_L, "text_encoder"),
            build(CLIPTextModelWithProjection, SDXL_CLIP_G, "text_encoder_2"),
        )
    return None, build(CLIPTextModelWithProjection, REFINER_CLIP_G, "text_encoder_2")


def _vae_from_state(state: dict[str, torch.Tensor], config: Path, dtype: torch.dtype, name: str) -> Any:
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    vae_config: dict[str, Any] = AutoencoderKL.load_config(str(config))  # pyright: ignore[reportAssignmentType]
    keys = list(state)
    if any(k.startswith("first_stage_model.") for k in keys):
        state = {k: v for k, v in state.items() if k.startswith("first_stage_model.")}
    if any(".down_blocks." in k or ".up_blocks." in k for k in keys):
        converted = {k.removeprefix("vae."): v for k, v in state.items()}  # already diffusers layout
    else:
        converted = convert_ldm_vae_checkpoint(state, vae_config)
    with init_empty_weights():
        vae: Any = AutoencoderKL.from_config(vae_config)
    expected = vae.state_dict()
    wrong = [
        k for k, v in expected.items() if k not in converted or tuple(converted[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise UnsupportedModel(
            f"The VAE in {name} does not fit this model's architecture ({len(wrong)} of {len(expected)} "
            f"weights missing or of another shape, e.g. {wrong[0]}).",
            "Choose a VAE made for this model's family (SD1/SD2 and SDXL VAEs share a shape; others do not).",
        )
    vae.load_state_dict({k: converted[k].to(dtype) for k in expected}, strict=True, assign=True)
    return vae.eval()


def load_vae(path: Path, config: Path, *, dtype: torch.dtype) -> Any:
    """A separate VAE file (original or diffusers layout) for the model whose VAE config is ``config``."""
    header, tensors = load_checked_safetensors(path)
    kind = identify_header(header, name=path.name).kind
    if kind != "vae":
        raise UnsupportedModel(
            f"{path.name} is not a VAE (it looks like a {kind}).", "Choose a VAE file for --vae."
        )
    return _vae_from_state(tensors, config, dtype, path.name)


def _assemble(
    unet: Any, vae: Any, encoders: tuple[Any, Any], identity: Identity, scheduler: dict[str, Any], name: str
) -> Components:
    from sfumato.models.tokenizer import load_clip_tokenizer

    te1, te2 = encoders
    arch = identity.architecture or "sd1"
    pad = "!" if arch == "sd2" else "<|endoftext|>"
    # Shared, not copied (a copy costs more than the rest of a load): tokenizers are only read;
    # embeddings enter through the encoder's forward hook, never by adding tokens.
    tokenizer = load_clip_tokenizer(pad)
    tokenizer_2 = load_clip_tokenizer("!") if te2 is not None else None
    if te1 is None:  # the refiner has only the OpenCLIP encoder: it is the first and only one
        te1, tokenizer, te2, tokenizer_2 = te2, tokenizer_2, None, None
    latent_size = int(unet.config.sample_size)
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    return Components(
        unet=unet,
        vae=vae,
        text_encoder=te1,  # pyright: ignore[reportArgumentType]
        tokenizer=tokenizer,  # pyright: ignore[reportArgumentType]
        scheduler_config=scheduler,
        info=ModelInfo(name=name, architecture=arch),
        text_encoder_2=te2,
        tokenizer_2=tokenizer_2,  # pyright: ignore[reportArgumentType]
        native_size=latent_size * scale,
    )


def load_diffusers_folder(folder: Path, *, dtype: torch.dtype, prediction: str | None = None) -> Components:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    identity = identify_file(folder, prediction=prediction)
    _check_folder_weights(folder)
    common: dict[str, Any] = {"local_files_only": True, "use_safetensors": True}
    unet = _from_folder(
        folder,
        "unet",
        lambda: _direct_or(
            diffusers_part(UNet2DConditionModel, folder / "unet", dtype=dtype),
            lambda: UNet2DConditionModel.from_pretrained(
                str(folder), subfolder="unet", torch_dtype=dtype, **common
            ),
        ),
    )
    vae = _from_folder(
        folder,
        "vae",
        lambda: _direct_or(
            diffusers_part(AutoencoderKL, folder / "vae", dtype=dtype),
            lambda: AutoencoderKL.from_pretrained(str(folder), subfolder="vae", torch_dtype=dtype, **common),
        ),
    )

    def encoder(sub: str) -> Any:
        if not (folder / sub).is_dir():
            return None
        architectures = _json(folder / sub / "config.json").get("architectures") or ["CLIPTextModel"]
        with_projection = isinstance(architectures, list) and "CLIPTextModelWithProjection" in architectures
        cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
        return _from_folder(
            folder,
            sub,
            lambda: _direct_or(
                transformers_part(cls, folder / sub, dtype=dtype),
                lambda: cls.from_pretrained(str(folder / sub), dtype=dtype, **common),
            ),
        ).eval()

    scheduler = _json(folder / "scheduler" / "scheduler_config.json")
    scheduler["prediction_type"] = identity.prediction
    components = _assemble(
        unet.eval(),
        vae.eval(),
        (encoder("text_encoder"), encoder("text_encoder_2")),
        identity,
        scheduler,
        folder.name,
    )
    for attr, sub in (("tokenizer", "tokenizer"), ("tokenizer_2", "tokenizer_2")):
        if (folder / sub / "vocab.json").is_file() and getattr(components, attr) is not None:
            tokenizer = _from_folder(
                folder,
                sub,
                lambda sub=sub: CLIPTokenizer.from_pretrained(str(folder / sub), local_files_only=True),
            )
            setattr(components, attr, tokenizer)
    return components


def _check_folder_weights(folder: Path) -> None:
    """Refuse a folder whose weights are pickles, including pickles named .safetensors."""
    for sub in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if not (folder / sub).is_dir():
            continue
        _json(folder / sub / "config.json")
        weights = [p for p in (folder / sub).iterdir() if p.suffix in WEIGHT_SUFFIXES]
        safe = [p for p in weights if p.suffix in (".safetensors", ".sft")]
        for file in safe:
            read_safetensors_header(file)
        if not safe and weights:
            fmt = sniff_format(weights[0])
            if fmt in (FileFormat.PICKLE, FileFormat.ZIP_PICKLE):
                raise unsafe_error(weights[0], fmt)
        if not weights:
            raise CorruptModelFile(f"{folder.name}/{sub} has no weights file.", "The folder is incomplete.")


def _check_loaded(path: Path, *modules: Any) -> None:
    for module in modules:
        if module is None:
            continue
        missing = missing_weights(module)
        if missing:
            raise CorruptModelFile(
                f"{path.name} lacks {len(missing)} weight{'s' if len(missing) > 1 else ''} its architecture needs "
                f"(e.g. {missing[0]}).",
                "The file is incomplete or of a variant Sfumato does not know; get a full checkpoint.",
            )


def _mismatch(path: Path, identity: Identity, exc: Exception) -> UnsupportedModel:
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return UnsupportedModel(
        f"{path.name} looks like {identity.describe()} but its weights do not fit that architecture: {first}",
        "If it is a v-prediction or inpainting model, say so (e.g. --prediction v); otherwise it is not supported yet.",
    )


def _to_device(components: Components, device: torch.device) -> None:
    modules: list[Any] = [components.unet, components.vae, components.text_encoder, components.text_encoder_2]
    for module in modules:
        if module is not None and module.device != device:
            module.to(device)


def _json(path: Path) -> dict[str, Any]:
    return read_model_config(path)


def _direct_or(direct: Any | None, fallback: Callable[[], Any]) -> Any:
    """The part read straight from its safetensors file, else what ``from_pretrained`` makes."""
    return direct if direct is not None else fallback()


def _from_folder(folder: Path, sub: str, load: Callable[[], T]) -> T:
    """One part of a diffusers folder, built by diffusers or transformers from configs already checked.

    Values that are well-formed JSON may still be nonsense to the library (a channel count of
    "wide"), and the libraries raise many kinds of error for that: each becomes one clear error.
    """
    try:
        return load()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise CorruptModelFile(
            f"{folder.name}/{sub} cannot be loaded: {first}",
            "The folder is damaged or not a Stable Diffusion model in diffusers layout; copy it again.",
        ) from exc
