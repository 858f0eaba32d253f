"""Choosing a backend by name; "auto" takes DALI only where CUDA, DALI and NVDEC are all present."""

from __future__ import annotations

import ctypes.util
import logging

import torch

from .._errors import BackendUnavailableError
from .._validate import check_choice
from ._dali import DALIBackend
from ._pyav import PyAVBackend

log = logging.getLogger("vidloader")
BACKENDS: tuple[str, ...] = ("auto", "pyav", "dali")


def dali_missing(device: torch.device) -> str | None:
    """Why the DALI backend cannot run on ``device``.

    On 'cpu' DALI uses its CPU decoder (VP8/VP9/MJPEG; other codecs fall back to PyAV per file).

    Args:
        device: the loader's device.

    Returns:
        A sentence naming what is missing, or None when DALI can run.
    """
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return "nvidia-dali is not installed: pip install 'nvidia-dali-cuda130==2.4.*'"
    if device.type != "cuda":
        return None
    if not torch.cuda.is_available():
        return "torch sees no CUDA device (no GPU or no driver)"
    if ctypes.util.find_library("nvcuvid") is None:
        return "the NVDEC library libnvcuvid.so is not found (it ships with the NVIDIA driver)"
    return None


def resolve_backend(name: str, *, device: torch.device) -> PyAVBackend | DALIBackend:
    """The backend a loader named ``name`` uses on ``device``.

    Args:
        name: "auto" (DALI where CUDA, DALI and NVDEC are all present, else PyAV), "pyav" or "dali".
        device: the loader's device.

    Returns:
        A PyAVBackend or DALIBackend.

    Raises:
        ConfigError: ``name`` is not one of BACKENDS.
        BackendUnavailableError: "dali" was asked for and cannot run (the message says why).
    """
    check_choice("backend", name, BACKENDS)
    if name == "pyav":
        return PyAVBackend()
    missing = dali_missing(device)
    if name == "auto" and device.type != "cuda":
        # On the CPU, PyAV decodes every codec exactly; DALI's CPU decoder is there for explicit use.
        missing = "device is the CPU"
    if name == "dali":
        if missing:
            raise BackendUnavailableError(f"backend='dali' cannot run: {missing}")
        return DALIBackend(device=device)
    if missing is None:
        log.info("vidloader: backend='auto' picked DALI (NVDEC on %s)", device)
        return DALIBackend(device=device)
    log.info("vidloader: backend='auto' picked PyAV (%s)", missing)
    return PyAVBackend()
