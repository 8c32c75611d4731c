"""Sfumato: an offline-first studio for Stable Diffusion."""

import os

# Sfumato never touches the network: these must be set before any Hugging Face library is
# imported, and every Hugging Face import in Sfumato happens after this package is imported.
for _flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ[_flag] = "1"
os.environ.setdefault("DO_NOT_TRACK", "1")

__version__ = "0.1.0"
