"""Loaded models kept within a byte budget; switching releases what no longer fits (CPU RAM and GPU memory)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
from collections import OrderedDict
from collections.abc import Callable, Hashable

from sfumato.models.components import Components


def components_bytes(components: Components) -> int:
    total = 0
    for module in (components.unet, components.vae, components.text_encoder, components.text_encoder_2):
        if module is None:
            continue
        total += sum(t.numel() * t.element_size() for t in module.parameters())
        total += sum(t.numel() * t.element_size() for t in module.buffers())
    return total


class ModelCache:
    """Least-recently-used models, at most ``budget_bytes`` of weights (the model in use always stays).

    Whoever still holds a Components returned earlier keeps it alive: callers should hold models
    only for the length of a job.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[Hashable, tuple[Components, int]] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def used_bytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def get(self, key: Hashable, load: Callable[[], Components], *, estimate: int = 0) -> Components:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key][0]
        # free room before loading, so the old and the new model are never both in memory needlessly
        self._evict_until(self.budget_bytes - estimate)
        components = load()
        size = components_bytes(components)
        self._entries[key] = (components, size)
        self._evict_until(self.budget_bytes, keep=key)
        return components

    def clear(self) -> None:
        self._evict_until(-1)

    def _evict_until(self, limit: int, keep: Hashable | None = None) -> None:
        evicted = False
        for key in list(self._entries):
            if self.used_bytes <= limit:
                break
            if key == keep:
                continue
            del self._entries[key]
            evicted = True
        if evicted:
            release_memory()


def release_memory() -> None:
    """Give freed model memory back: Python objects, the CUDA caching allocator and glibc's heap."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
        mps = getattr(torch, "mps", None)
        if mps is not None and torch.backends.mps.is_available():
            mps.empty_cache()
    except ImportError:
        pass
    # glibc keeps freed arenas mapped; without this, RSS grows on every switch (cf. A1111 #5691)
    libc_name = ctypes.util.find_library("c")
    if libc_name and "libc.so" in libc_name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name).malloc_trim(0)
