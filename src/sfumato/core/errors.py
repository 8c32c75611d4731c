"""Errors a user can act on: each says what went wrong and what to do next."""

from __future__ import annotations


class SfumatoError(Exception):
    """Base of every error a face shows to the user as one line (never a traceback)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class InvalidRequest(SfumatoError):
    """The request cannot be run as given (bad size, unknown sampler, bad image…)."""


class BlockedPrompt(InvalidRequest):
    """The prompt names an entry of a blocklist the settings turn on."""


class ImageReadError(InvalidRequest):
    """An input image (init image, mask) could not be read."""


class ModelNotFound(SfumatoError):
    """A named model, VAE, LoRA or embedding is not in any configured folder."""


class NoModelConfigured(SfumatoError):
    """No model was named and no default model is available."""


class UnsafeModelFile(SfumatoError):
    """A model file would need unpickling (arbitrary code) to load."""


class UnsupportedModel(SfumatoError):
    """A model file is readable but of an architecture Sfumato does not support (yet)."""


class CorruptModelFile(SfumatoError):
    """A model file is truncated or malformed."""


class InvalidSettings(SfumatoError):
    """The config file or a SFUMATO_* variable holds something the settings cannot take."""


class OutputError(SfumatoError):
    """An image could not be written (folder not writable, disk full…). Nothing was left behind."""


class Cancelled(SfumatoError):
    """The user cancelled the job; raised between denoising steps."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class NonFiniteOutput(SfumatoError):
    """A model produced NaN or infinite numbers; the job stops before anything is saved."""
