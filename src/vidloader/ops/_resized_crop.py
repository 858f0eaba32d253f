"""``torch.ops.vidloader.clip_resized_crop_normalize`` and its validated Python wrapper.

The op is a ``torch.library.custom_op`` so torch.compile sees one opaque node with a fake (shape-only)
implementation instead of tracing into Triton or the reference loop. Its body picks the backend at run time:
the Triton kernel for CUDA tensors, or for CPU tensors when ``TRITON_INTERPRET=1`` (the kernel then runs
under Triton's numpy interpreter, which is how CI tests the real kernel code without a GPU); otherwise the
pure-torch reference. Validation lives in the wrapper, outside the op, so the op stays traceable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ._checks import (
    check_boxes,
    check_video,
)
from ._common import check_row_args, check_settings, output_shape, run_backend
from ._reference import resized_crop_normalize_reference


def _load_triton() -> Callable[..., torch.Tensor]:
    from ._kernels import resized_crop_normalize_triton

    return resized_crop_normalize_triton


@torch.library.custom_op(
    "vidloader::clip_resized_crop_normalize", mutates_args=(), device_types=("cpu", "cuda")
)
def _clip_resized_crop_normalize_op(
    video: torch.Tensor,
    boxes: torch.Tensor,
    size: list[int],
    flip: torch.Tensor,
    mean: list[float],
    std: list[float],
    out_dtype: torch.dtype,
    layout: str,
    jitter: torch.Tensor | None,
    views: int,
) -> torch.Tensor:
    args = (video, boxes, size, flip, mean, std, out_dtype, layout, jitter, views)
    return run_backend(video.device, _load_triton, resized_crop_normalize_reference, args)


@_clip_resized_crop_normalize_op.register_fake
def _(
    video: torch.Tensor,
    boxes: torch.Tensor,
    size: list[int],
    flip: torch.Tensor,
    mean: list[float],
    std: list[float],
    out_dtype: torch.dtype,
    layout: str,
    jitter: torch.Tensor | None,
    views: int,
) -> torch.Tensor:
    shape = output_shape(boxes.shape[0], video.shape[1], size[0], size[1], layout)
    return video.new_empty(shape, dtype=out_dtype)


def clip_resized_crop_normalize(
    video_u8: torch.Tensor,
    boxes: torch.Tensor,
    size: int | Sequence[int],
    flip: torch.Tensor | None,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    out_dtype: torch.dtype = torch.float32,
    layout: str = "NCTHW",
    jitter: torch.Tensor | None = None,
    views: int = 1,
) -> torch.Tensor:
    """Crop, resize, flip, colour-jitter and normalise a batch of clips in one pass.

    Args:
        video_u8: uint8 ``[B, T, H, W, 3]`` RGB clips (made contiguous if they are not).
        boxes: int64 ``[B * views, 4]`` crop boxes ``(y0, x0, h, w)``, one per output clip, clip-major; the
            same box is used for every frame of that clip. CPU or the video's device (CPU avoids a sync for
            the bounds check).
        size: output ``(H', W')`` (an int means square). Resizing is
            ``F.interpolate(mode="bilinear", align_corners=False, antialias=False)`` on float32 of the box.
        flip: bool ``[B * views]``: mirror that output clip horizontally; None means no flips.
        mean, std: 3 per-channel values; the output is ``(x / 255 - mean) / std``.
        out_dtype: torch.float32, torch.float16 or torch.bfloat16.
        layout: "NCTHW" (``[N, 3, T, H', W']``) or "NTHWC" (``[N, T, H', W', 3]``).
        jitter: optional float32 ``[B * views, 3]`` (brightness, contrast, saturation) factors, applied as
            torchvision's adjust_* on [0, 1] after resizing and before normalising, clamped after each step;
            contrast blends with the mean grey level of the whole output clip. Costs one extra read-only
            pre-pass over the input on the kernel path.
        views: output clips per input clip; output row ``n`` comes from input clip ``n // views``. Lets
            multi-crop evaluation run in one launch without copying the video.

    Returns:
        ``[B * views, ...]`` tensor of ``out_dtype`` on the video's device, in ``layout``.

    Raises:
        ConfigError: for any argument outside the above.
    """
    video_u8 = check_video(video_u8)
    settings = check_settings(size, mean, std, out_dtype, layout, views)
    rows = video_u8.shape[0] * settings.views
    boxes = check_boxes(boxes, rows, video_u8.shape[2], video_u8.shape[3])
    device = video_u8.device
    flip, jitter = check_row_args(flip, jitter, rows, device)
    return torch.ops.vidloader.clip_resized_crop_normalize(
        video_u8.contiguous(), boxes.to(device, non_blocking=True), *settings.op_args(flip, jitter)
    )
