"""Importing the engine ahead of time, for a face that must not stall later.

Importing torch, diffusers and transformers runs long stretches of C initialisation that hold
Python's GIL (up to ~0.8 s at a time on a small CPU), which would freeze a window's event loop if
it happened in the worker thread during the first job. The desktop app calls this while it shows
its splash screen, before the window takes input.
"""

from __future__ import annotations

import time


def import_engine() -> float:
    """Import what the first job needs; returns the seconds it took."""
    start = time.monotonic()
    import diffusers  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from diffusers import AutoencoderKL, SchedulerMixin, UNet2DConditionModel  # noqa: F401
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer  # noqa: F401

    import sfumato.archive.index
    import sfumato.engine.generate
    import sfumato.jobs.runner
    import sfumato.models.loading
    import sfumato.prompts.encoder  # noqa: F401

    return time.monotonic() - start
