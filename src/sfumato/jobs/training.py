"""One training request end to end: the model, the prepared pictures, the memory check, the training
with progress, samples and checkpoints, and the file written into the library's embeddings or Lora
folder, where a prompt finds it at once.

The CLI calls it directly; a worker calls it for a training job. A cancelled or interrupted run
leaves a checkpoint in ``<data_dir>/training/<kind>-<name>/`` and no file in the library; the same
request run again resumes there.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import InvalidRequest
from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.settings import Settings
from sfumato.core.training_request import TrainingOutcome, TrainingRequest

if TYPE_CHECKING:
    from PIL import Image

    from sfumato.models.components import Components
    from sfumato.training.dataset import PreparedSet
    from sfumato.training.memory import MemoryEstimate

Echo = Callable[[str], None]
FOLDER_NAMES = {"embedding": "embeddings", "lora": "Lora"}
SAMPLE_STEPS = 20


def run_folder(settings: Settings, request: TrainingRequest) -> Path:
    """Checkpoints, the loss log and samples of one training, by kind and name."""
    return settings.data_dir / "training" / f"{request.kind}-{request.name}"


def training_set_files(folder: Path) -> dict[str, Path]:
    """A training set's pictures and caption files, by file name: what a worker elsewhere is sent
    (no folders, links or other files)."""
    from sfumato.training.dataset import PICTURE_SUFFIXES

    if not folder.is_dir():
        raise InvalidRequest(f"The training pictures' folder {folder.name!r} is gone from the server.")
    wanted = (*PICTURE_SUFFIXES, ".txt")
    return {
        path.name: path
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in wanted and path.is_file() and not path.is_symlink()
    }


def library_folder(settings: Settings, kind: str) -> Path:
    """Where a new embedding or LoRA goes: the first model folder's embeddings/Lora folder (an A1111,
    ComfyUI or Stability Matrix tree's), else ``<data_dir>/models/<embeddings|Lora>``, which is then
    added to the library so prompts find what is written there."""
    from sfumato.models.library import ModelLibrary, kind_folders

    library = ModelLibrary(settings)
    for root in library.folders():
        for folder in kind_folders(root):
            if folder.kind == kind:
                return folder.path
    base = settings.data_dir / "models"
    (base / FOLDER_NAMES[kind]).mkdir(parents=True, exist_ok=True)
    if base.resolve() not in library.folders():
        library.add_folder(base)
    return base / FOLDER_NAMES[kind]


def target_path(settings: Settings, request: TrainingRequest) -> Path:
    """The file to write; refuses a name the library already has unless ``overwrite``."""
    from sfumato.prompts.networks import LibraryResolver

    existing = LibraryResolver(settings)(request.kind, request.name)
    if existing is not None:
        if not request.overwrite:
            what = "an embedding" if request.kind == "embedding" else "a LoRA"
            raise InvalidRequest(
                f"There is already {what} called {request.name!r} ({existing}).",
                "Choose another --name, or pass --overwrite to replace it.",
            )
        if existing.suffix == ".safetensors":
            return existing
    return library_folder(settings, request.kind) / f"{request.name}.safetensors"


def subject_finder(components: Components) -> Callable[[Image.Image], tuple[int, int, int, int] | None]:
    """The largest object the demo world's judge sees (on the demo model), else the largest face."""
    from sfumato.models.loading import BUILTIN_MODEL
    from sfumato.postprocess.detect import detect_demo, detect_faces

    demo = components.info.name == BUILTIN_MODEL

    def find(picture: Image.Image) -> tuple[int, int, int, int] | None:
        try:
            regions = detect_demo(picture, "any") if demo else detect_faces(picture)
        except Exception:  # a detector that cannot run leaves the centre crop
            return None
        return max(regions, key=lambda r: r.area).box if regions else None

    return find


def describer(settings: Settings) -> Callable[[Image.Image], str]:
    def describe(picture: Image.Image) -> str:
        from sfumato.analysis.interrogate import interrogate_with_settings

        return interrogate_with_settings(picture, settings).prompt

    return describe


def prepare(settings: Settings, request: TrainingRequest, components: Components) -> PreparedSet:
    from sfumato.training.dataset import prepare_dataset

    return prepare_dataset(
        Path(request.images).expanduser(),
        request.size or components.native_size,
        request.word,
        flip=request.flip,
        find_subject=subject_finder(components),
        describe=describer(settings),
    )


def memory_estimate(request: TrainingRequest, components: Components, trainable: int) -> MemoryEstimate:
    from sfumato.training.memory import estimate_memory

    return estimate_memory(
        components,
        trainable_parameters=trainable,
        batch=request.batch,
        size=request.size or components.native_size,
        text_gradients=request.kind == "embedding",
        gradient_checkpointing=request.gradient_checkpointing,
        mixed_precision=request.mixed_precision,
        cache_latents=request.cache_latents,
    )


def trainable_parameters(request: TrainingRequest, components: Components) -> int:
    if request.kind == "embedding":
        encoder: Any = components.text_encoder
        width = getattr(encoder, "text_model", encoder).embeddings.token_embedding.weight.shape[1]
        return request.vectors * int(width)
    from sfumato.training.lora_training import LoraAdapters

    return sum(p.numel() for p in LoraAdapters(components, _lora_config(request)).module.parameters())


def _lora_config(request: TrainingRequest) -> Any:
    from sfumato.training.lora_training import LoraTrainingConfig

    return LoraTrainingConfig(
        request.name,
        rank=request.rank,
        alpha=request.alpha,
        steps=request.steps,
        lr=request.lr,
        batch=request.batch,
        seed=request.seed,
        checkpoint_every=request.checkpoint_every,
        gradient_checkpointing=request.gradient_checkpointing,
        mixed_precision=request.mixed_precision,
        cache_latents=request.cache_latents,
    )


def _embedding_config(request: TrainingRequest) -> Any:
    from sfumato.training.textual_inversion import TextualInversionConfig

    return TextualInversionConfig(
        request.name,
        init_text=request.init_text,
        vectors=request.vectors,
        steps=request.steps,
        lr=request.lr,
        batch=request.batch,
        seed=request.seed,
        checkpoint_every=request.checkpoint_every,
        gradient_checkpointing=request.gradient_checkpointing,
        mixed_precision=request.mixed_precision,
        cache_latents=request.cache_latents,
    )


def _same_run(folder: Path, request: TrainingRequest) -> bool:
    """Whether ``folder``'s checkpoints belong to this request (resume) or to another one (start over)."""
    saved = folder / "request.json"
    if not saved.is_file():
        return False
    try:
        before = TrainingRequest.model_validate_json(saved.read_text("utf-8"))
    except ValueError:
        return False
    return before.model_copy(update={"overwrite": False}) == request.model_copy(update={"overwrite": False})


@dataclass
class _Sampler:
    """Sample pictures every N steps with what is learned so far, saved in the run folder."""

    settings: Settings
    request: TrainingRequest
    components: Components
    folder: Path
    prompt: str
    taken: list[Path]

    def __call__(self, step: int, write_network: Callable[[Path], object]) -> Image.Image:
        import torch

        from sfumato.core.request import GenerationRequest
        from sfumato.engine.generate import generate
        from sfumato.prompts.networks import FolderResolver

        networks = self.folder / "sample-networks"
        write_network(networks / FOLDER_NAMES[self.request.kind] / f"{self.request.name}.safetensors")
        prompt = self.prompt
        if self.request.kind == "lora":
            prompt += f" <lora:{self.request.name}:1>"
        size = self.request.size or self.components.native_size
        generation = GenerationRequest(
            prompt=prompt, seed=self.request.seed, steps=SAMPLE_STEPS, width=size, height=size
        )
        with torch.autocast(self.components.device.type, enabled=False):
            picture = (
                generate(self.components, generation, resolve=FolderResolver([networks])).images[0].image
            )
        path = self.folder / "samples" / f"step-{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
        self.taken.append(path)
        return picture


def run_training(
    settings: Settings,
    request: TrainingRequest,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    components: Components | None = None,
    echo: Echo | None = None,
    target: Path | None = None,
) -> TrainingOutcome:
    """Train what ``request`` asks and write it into the library (A1111 format), or to ``target``
    (a remote worker's scratch file, which the server then checks against its own library).

    Raises :class:`~sfumato.core.errors.Cancelled` when ``cancel`` is set (a checkpoint is kept for
    resuming) and :class:`~sfumato.core.errors.InvalidRequest` for a bad folder, picture, name or a
    run that will not fit in memory, before anything is trained.
    """
    from sfumato.training.memory import check_memory

    say = echo or (lambda _: None)
    target = target or target_path(settings, request)
    if components is None:
        from sfumato.models.loading import load_model

        # no compiled UNet: a training changes weights, and its few samples would not repay the compile
        components = load_model(settings.model_copy(update={"compile_unet": False}), request.model)
    prepared = prepare(settings, request, components)
    for note in prepared.notes:
        say(note)
    say(f"{len(prepared.pictures)} training pictures at {request.size or components.native_size} px.")
    estimate = memory_estimate(request, components, trainable_parameters(request, components))
    say(estimate.describe())
    check_memory(estimate, request.memory_limit_mb * 1024**2 if request.memory_limit_mb else None)

    folder = run_folder(settings, request)
    resumed_from = 0
    if folder.exists() and not _same_run(folder, request):
        shutil.rmtree(folder)  # checkpoints of another request with this name: start over
    elif folder.exists():
        from sfumato.training.checkpoint import latest_checkpoint

        latest = latest_checkpoint(folder / "checkpoints")
        resumed_from = latest.step if latest else 0
        if resumed_from:
            say(f"Resuming from the checkpoint at step {resumed_from}.")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "request.json").write_text(request.model_dump_json(indent=1), "utf-8")

    samples: list[Path] = []
    sampler = _Sampler(
        settings,
        request,
        components,
        folder,
        request.sample_prompt or prepared.pictures[0].example.caption,
        samples,
    )
    started = time.monotonic()

    def report(step: int, loss: float, write_network: Callable[[Path], object]) -> None:
        preview = None
        if request.sample_every and step % request.sample_every == 0:
            preview = sampler(step, write_network)
        if on_progress is not None:
            on_progress(StepProgress(step, request.steps, 0, 1, preview=preview, loss=loss))
        if cancel is not None:
            cancel.raise_if_cancelled()

    if request.kind == "embedding":
        from sfumato.training.textual_inversion import save_embedding, train_textual_inversion

        def embedding_step(step: int, loss: float, vectors: Any) -> None:
            report(step, loss, lambda path: save_embedding(path, request.name, vectors, components, step))

        trained: Any = train_textual_inversion(
            components,
            prepared.examples,
            _embedding_config(request),
            target.parent,
            run_folder=folder / "checkpoints",
            on_step=embedding_step,
        )
        written = trained.path
    else:
        from sfumato.training.lora_training import save_lora, train_lora

        config = _lora_config(request)

        def lora_step(step: int, loss: float, adapters: Any) -> None:
            report(step, loss, lambda path: save_lora(path, adapters, config, components, step))

        trained = train_lora(
            components,
            prepared.examples,
            config,
            target.parent,
            run_folder=folder / "checkpoints",
            on_step=lora_step,
        )
        written = trained.path
    if written != target:  # an overwritten file of another name's case, say
        written.replace(target)
    shutil.rmtree(folder / "sample-networks", ignore_errors=True)
    say(f"Trained in {time.monotonic() - started:.0f} s.")
    return TrainingOutcome(
        path=target,
        steps=trained.result.step,
        last_loss=trained.result.last_loss,
        resumed_from=resumed_from,
        samples=tuple(samples),
        notes=tuple(prepared.notes),
    )


def install_trained_file(settings: Settings, request: TrainingRequest, data: bytes) -> Path:
    """A file a remote worker trained for ``request``: checked as an embedding or LoRA, then moved into
    this machine's library under the request's name (refused, as locally, when the name is taken)."""
    from sfumato.core.errors import SfumatoError
    from sfumato.models.embeddings import load_embedding
    from sfumato.models.safety import load_safetensors

    target = target_path(settings, request)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    part.write_bytes(data)
    try:
        if request.kind == "embedding":
            load_embedding(part, request.name)
        elif not any(key.startswith(("lora_unet_", "lora_te")) for key in load_safetensors(part)):
            raise InvalidRequest("The file holds no LoRA weights.", "Send the file the LoRA training wrote.")
    except Exception as error:  # whatever the file is, it must not land in the library
        part.unlink(missing_ok=True)
        why = error.message if isinstance(error, SfumatoError) else f"{type(error).__name__}: {error}"
        raise InvalidRequest(
            f"The worker's trained file is not a usable {request.kind} ({why}).",
            "Update Sfumato on the worker to the server's version.",
        ) from None
    part.replace(target)
    return target
