"""Everything a studio window shows, in one plain-Python object the panels observe."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sfumato.core.request import GenerationRequest
from sfumato.desktop.model.brush import Brush
from sfumato.desktop.model.document import Document, Layer, LayerKind, Rect
from sfumato.desktop.model.frame import Frame, FramePlan, build_request, native_size_for, plan_frame
from sfumato.desktop.model.jobs import JobsModel
from sfumato.desktop.model.prompt import PromptState


class Tool(enum.StrEnum):
    frame = "frame"  # drag the generation frame
    move = "move"  # drag the active layer
    brush = "brush"  # paint the mask
    eraser = "eraser"  # erase the mask
    select = "select"  # drag a rectangle selection
    lasso = "lasso"  # draw an outline to mask (Alt: unmask)
    pan = "pan"


@dataclass
class Studio:
    outputs: Path
    document: Document = field(default_factory=Document)
    frame: Frame = field(default_factory=Frame)
    prompt: PromptState = field(default_factory=PromptState)
    jobs: JobsModel = field(init=False)
    tool: Tool = Tool.frame
    brush: Brush = field(default_factory=Brush)
    selection: Rect | None = None
    active_layer: int | None = None
    path: Path | None = None  # the .ora file the canvas was last saved to or opened from
    nsfw_filter: str | None = None  # off, blur or withhold, sent with every request; None = the engine's
    blocklists: list[Path] = field(default_factory=list)  # checked before a job is queued; [] = off
    upscaler: str = "Lanczos"  # what Layer → Upscale uses: Lanczos, Nearest or an upscaler model's name
    _listeners: list[Callable[[str], None]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.jobs = JobsModel(self.outputs)

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """``listener(what)`` with what = "tool", "brush", "frame", "selection", "active", "variants"."""
        self._listeners.append(listener)

    def changed(self, what: str) -> None:
        for listener in list(self._listeners):
            listener(what)

    def set_tool(self, tool: Tool) -> None:
        self.tool = tool
        self.changed("tool")

    def set_brush(self, size: float | None = None, hardness: float | None = None) -> None:
        self.brush = Brush(
            size if size is not None else self.brush.size,
            hardness if hardness is not None else self.brush.hardness,
        )
        self.changed("brush")

    def move_frame(self, x: int, y: int) -> None:
        self.frame.x, self.frame.y = int(x), int(y)
        self.changed("frame")

    def set_frame(self, rect: Rect) -> None:
        self.frame.x, self.frame.y, self.frame.width, self.frame.height = (
            rect.x,
            rect.y,
            rect.width,
            rect.height,
        )
        self.changed("frame")

    def resize_frame(self, width: int, height: int) -> None:
        self.frame.width, self.frame.height = max(64, width // 8 * 8), max(64, height // 8 * 8)
        self.changed("frame")

    def choose_checkpoint(self, name: str | None, architecture: str | None) -> None:
        """The checkpoint the frame draws with (None = the built-in model); the frame takes its size."""
        self.prompt.update(model=name)
        side = native_size_for(architecture)
        self.resize_frame(side, side)

    def set_selection(self, rect: Rect | None) -> None:
        self.selection = rect.normalised() if rect is not None else None
        if self.selection is not None and self.selection.empty:
            self.selection = None
        self.changed("selection")

    def set_active(self, layer_id: int | None) -> None:
        self.active_layer = layer_id
        self.changed("active")

    def active(self) -> Layer | None:
        if self.active_layer is None:
            return None
        try:
            return self.document.layer(self.active_layer)
        except KeyError:
            return None

    def active_mask(self) -> Layer | None:
        """The mask painted on: the active layer if it is a mask, else the topmost mask."""
        layer = self.active()
        if layer is not None and layer.is_mask:
            return layer
        masks = [layer for layer in self.document.layers if layer.kind is LayerKind.mask]
        return masks[-1] if masks else None

    def plan(self) -> FramePlan:
        return plan_frame(self.document, self.frame.rect)

    def request(self) -> tuple[GenerationRequest, FramePlan]:
        """The frame's request; raises BlockedPrompt when it names an entry of the blocklists."""
        plan = self.plan()
        fields = self.prompt.request_fields()
        if self.nsfw_filter is not None:
            fields["nsfw_filter"] = self.nsfw_filter
        request = build_request(plan, fields)
        self.check_blocklists(request)
        return request, plan

    def check_blocklists(self, request: GenerationRequest) -> None:
        if self.blocklists:
            from sfumato.analysis.blocklist import load_blocklists, request_prompts

            load_blocklists(self.blocklists).check(request_prompts(request))

    def step_variant(self, delta: int) -> None:
        if self.jobs.variants is not None:
            self.jobs.variants.step(delta)
            self.changed("variants")

    def discard_variants(self) -> None:
        self.jobs.variants = None
        self.changed("variants")
