"""What a model file is, from its safetensors header alone (tensor names, shapes, metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sfumato.core.errors import UnsupportedModel
from sfumato.models.safety import (
    SafetensorsHeader,
    TensorInfo,
    config_int,
    read_model_config,
    read_safetensors_header,
)

Kind = Literal[
    "checkpoint",
    "vae",
    "lora",
    "embedding",
    "upscaler",
    "controlnet",
    "unet",
    "text_encoder",
    "vae_approx",
    "unknown",
]
Prediction = Literal["epsilon", "v_prediction"]

UNET = "model.diffusion_model."
SD1_CLIP = "cond_stage_model.transformer."
SD2_CLIP = "cond_stage_model.model."
SDXL_CLIP_L = "conditioner.embedders.0.transformer."
SDXL_CLIP_G = "conditioner.embedders.1.model."
REFINER_CLIP_G = "conditioner.embedders.0.model."
LDM_VAE = "first_stage_model."

# cross-attention width of the UNet -> architecture, for files without a text encoder
_CONTEXT_DIMS = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl-refiner"}


@dataclass(frozen=True)
class Identity:
    kind: Kind
    architecture: str | None = None  # sd1, sd2, sdxl, sdxl-refiner
    inpainting: bool = False
    prediction: Prediction = "epsilon"
    prediction_known: bool = True  # False when guessed (SD2 files rarely say)
    has_vae: bool = False
    has_ema: bool = False
    in_channels: int = 4

    @property
    def refiner(self) -> bool:
        return self.architecture == "sdxl-refiner"

    @property
    def config_name(self) -> str:
        """The shipped config folder that matches this checkpoint."""
        if self.architecture == "sd1":
            return "sd1-inpainting" if self.inpainting else "sd1"
        if self.architecture == "sd2":
            return "sd2-768-v" if self.prediction == "v_prediction" else "sd2-512"
        if self.architecture == "sdxl":
            return "sdxl-inpainting" if self.inpainting else "sdxl"
        if self.architecture == "sdxl-refiner":
            return "sdxl-refiner"
        raise UnsupportedModel(f"No configuration for architecture {self.architecture!r}.")

    def describe(self) -> str:
        parts = [self.architecture or self.kind]
        if self.inpainting:
            parts.append("inpainting")
        if self.prediction == "v_prediction":
            parts.append("v-prediction" + ("" if self.prediction_known else " (guessed)"))
        return " ".join(parts)


def identify_file(path: Path, *, prediction: str | None = None) -> Identity:
    """Identify a model file or a diffusers folder; ``prediction`` ("v" or "epsilon") overrides the guess."""
    if path.is_dir():
        return identify_folder(path, prediction=prediction)
    return identify_header(read_safetensors_header(path), name=path.name, prediction=prediction)


def identify_header(header: SafetensorsHeader, *, name: str = "", prediction: str | None = None) -> Identity:
    keys = header.tensors
    if any(k.startswith(UNET) for k in keys):
        identity = _identify_checkpoint(header, name)
    else:
        identity = Identity(kind=_other_kind(header, name))
    if prediction is not None and identity.kind == "checkpoint":
        identity = _with_prediction(identity, prediction)
    return identity


def _identify_checkpoint(header: SafetensorsHeader, name: str) -> Identity:
    keys = header.tensors
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731
    if has(SDXL_CLIP_G):
        arch = "sdxl"
    elif has(REFINER_CLIP_G):
        arch = "sdxl-refiner"
    elif has(SD2_CLIP):
        arch = "sd2"
    elif has(SD1_CLIP):
        arch = "sd1"
    else:
        arch = _arch_from_unet(keys, name)
    conv_in = keys.get(UNET + "input_blocks.0.0.weight")
    in_channels = conv_in.shape[1] if conv_in and len(conv_in.shape) == 4 else 4
    if in_channels == 8:
        raise UnsupportedModel(
            f"{name}: not supported yet: looks like an InstructPix2Pix model (8 input channels)."
        )
    if in_channels not in (4, 9):
        raise UnsupportedModel(
            f"{name}: not supported yet: looks like a UNet with {in_channels} input channels."
        )
    if any(k.startswith(UNET + "joint_blocks") or k.startswith(UNET + "double_blocks") for k in keys):
        raise UnsupportedModel(f"{name}: not supported yet: looks like {_guess_foreign(header)}.")
    pred, known = _prediction(header, arch, name)
    return Identity(
        kind="checkpoint",
        architecture=arch,
        inpainting=in_channels == 9,
        prediction=pred,
        prediction_known=known,
        has_vae=has(LDM_VAE),
        has_ema=sum(k.startswith("model_ema.") for k in keys) > 100,
        in_channels=in_channels,
    )


def _arch_from_unet(keys: dict[str, TensorInfo], name: str) -> str:
    for key, info in keys.items():
        if key.startswith(UNET) and key.endswith("attn2.to_k.weight") and len(info.shape) == 2:
            arch = _CONTEXT_DIMS.get(info.shape[1])
            if arch:
                return arch
            raise UnsupportedModel(
                f"{name}: not supported yet: looks like a UNet with {info.shape[1]}-wide text conditioning."
            )
    raise UnsupportedModel(f"{name}: not supported yet: looks like a diffusion model Sfumato does not know.")


def _prediction(header: SafetensorsHeader, arch: str, name: str) -> tuple[Prediction, bool]:
    if "v_pred" in header.tensors:  # the marker key v-prediction SDXL finetunes carry
        return "v_prediction", True
    meta = {k.lower(): v.lower() for k, v in header.metadata.items()}
    said = meta.get("modelspec.prediction_type") or meta.get("prediction_type")
    if said:
        return ("v_prediction" if said.startswith("v") else "epsilon"), True
    if meta.get("ss_v_parameterization") in ("true", "1"):
        return "v_prediction", True
    if arch == "sd2":
        # SD 2.x files never say; the 768 models (v) are the common ones, the 512-base ones say so by name
        lowered = name.lower()
        if ("512" in lowered and "768" not in lowered) or "inpaint" in lowered:
            return "epsilon", False
        return "v_prediction", False
    return "epsilon", True


def _with_prediction(identity: Identity, prediction: str) -> Identity:
    value = prediction.lower().replace("-", "_")
    if value in ("v", "v_prediction"):
        pred: Prediction = "v_prediction"
    elif value in ("eps", "epsilon"):
        pred = "epsilon"
    else:
        raise UnsupportedModel(f"Unknown prediction type {prediction!r}.", "Use 'v' or 'epsilon'.")
    return Identity(**{**identity.__dict__, "prediction": pred, "prediction_known": True})


def kind_of_header(header: SafetensorsHeader) -> Kind:
    """What a file holds, from its tensor names alone; never raises (a checkpoint of a family Sfumato
    does not load is still a checkpoint)."""
    if any(k.startswith(UNET) for k in header.tensors):
        return "checkpoint"
    return _other_kind(header, "")


# A1111/ComfyUI ControlNet, diffusers ControlNet
_CONTROLNET = ("control_model.", "controlnet_cond_embedding.", "input_hint_block.")
# LDM UNet without its prefix, Flux / SD3 transformers, as ComfyUI's unet/diffusion_models hold them
_UNET_ONLY = ("input_blocks.", "double_blocks.", "joint_blocks.")
# CLIP (transformers, with and without "text_model."), OpenCLIP text towers, T5 encoders
_TEXT_ENCODER = (
    "text_model.encoder.layers.",
    "encoder.layers.0.self_attn.",
    "transformer.resblocks.",
    "encoder.block.0.",
)


def _other_kind(header: SafetensorsHeader, name: str) -> Kind:
    keys = header.tensors
    if any(k.startswith(_CONTROLNET) for k in keys):
        return "controlnet"
    if any(k.startswith(_UNET_ONLY) for k in keys) or (
        "time_embedding.linear_1.weight" in keys and "conv_in.weight" in keys
    ):
        return "unet"
    if any(k.startswith(_TEXT_ENCODER) for k in keys):
        return "text_encoder"
    # TAESD: madebyollin's numbered layers, or diffusers' AutoencoderTiny
    if keys and (
        all(k[:1].isdigit() for k in keys)
        or any(k.startswith(("encoder.layers.", "decoder.layers.")) for k in keys)
    ):
        return "vae_approx"
    if any(k.startswith(("encoder.", "decoder.", LDM_VAE)) for k in keys) and any(
        "post_quant_conv" in k for k in keys
    ):
        return "vae"
    if any(".lora_down." in k or ".lora_A." in k or k.startswith(("lora_unet_", "lora_te")) for k in keys):
        return "lora"
    if any(k in keys for k in ("emb_params", "clip_l", "clip_g", "string_to_param")) or (
        len(keys) <= 2 and all(len(i.shape) == 2 for i in keys.values())
    ):
        return "embedding"
    if any(k.startswith(("conv_first.", "model.0.", "body.", "conv_body.")) for k in keys):
        return "upscaler"
    return "unknown"


def _guess_foreign(header: SafetensorsHeader) -> str:
    """Name a model family Sfumato does not load, using diffusers' key table (offline, shapes only)."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    class _Shape:
        def __init__(self, info: TensorInfo) -> None:
            self.shape = info.shape

    try:
        model_type = infer_diffusers_model_type({k: _Shape(v) for k, v in header.tensors.items()})
    except Exception:  # the table indexes keys that may be absent; any failure means "don't know"
        return "a model family Sfumato does not know"
    return f"a {model_type} model"


def identify_folder(folder: Path, *, prediction: str | None = None) -> Identity:
    """Identify a diffusers-layout folder from its JSON configs."""
    unet_file, scheduler_file = (
        folder / "unet" / "config.json",
        folder / "scheduler" / "scheduler_config.json",
    )
    if not unet_file.is_file() or not scheduler_file.is_file():
        raise UnsupportedModel(
            f"{folder} is not a diffusers model folder Sfumato can read (it lacks "
            f"{'unet/config.json' if not unet_file.is_file() else 'scheduler/scheduler_config.json'}).",
            "A diffusers folder has unet/config.json, vae/, text_encoder/ and scheduler/.",
        )
    unet, scheduler = read_model_config(unet_file), read_model_config(scheduler_file)
    has_te2 = (folder / "text_encoder_2").is_dir()
    has_te1 = (folder / "text_encoder").is_dir()
    in_channels = config_int(unet, "in_channels", 4, unet_file, high=64)
    if has_te2 and has_te1:
        arch = "sdxl"
    elif has_te2:
        arch = "sdxl-refiner"
    elif config_int(unet, "cross_attention_dim", 768, unet_file) == 1024:
        arch = "sd2"
    else:
        arch = "sd1"
    pred: Prediction = "v_prediction" if scheduler.get("prediction_type") == "v_prediction" else "epsilon"
    identity = Identity(
        kind="checkpoint",
        architecture=arch,
        inpainting=in_channels == 9,
        prediction=pred,
        has_vae=(folder / "vae").is_dir(),
        in_channels=in_channels,
    )
    return _with_prediction(identity, prediction) if prediction else identity
