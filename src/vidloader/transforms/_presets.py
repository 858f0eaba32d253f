"""Named normalisation statistics, so torchvision's and PyTorchVideo's presets map one to one."""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import ConfigError
from ..ops import check_channel_stats

Stats = tuple[tuple[float, float, float], tuple[float, float, float]]

# (mean, std) per RGB channel, for x in [0, 1].
NORMALIZATION_PRESETS: dict[str, Stats] = {
    # What torchvision's video models (r3d_18, mc3_18, r2plus1d_18, s3d, ...) were trained with:
    # references/video_classification/presets.py and the weights' transforms().
    "kinetics": ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)),
    # ImageNet statistics (torchvision's image models; MViT / Swin3D video weights use these too).
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # PyTorchVideo's / SlowFast's Kinetics defaults, vidloader's default when nothing is given.
    "pytorchvideo": ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225)),
}
DEFAULT_PRESET = "pytorchvideo"


def resolve_stats(
    preset: str | None, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(mean, std)`` from a preset name or explicit values (not both); neither gives the default preset."""
    if preset is not None:
        if preset not in NORMALIZATION_PRESETS:
            raise ConfigError(
                f"preset={preset!r} is not allowed; choose one of {', '.join(map(repr, NORMALIZATION_PRESETS))}"
            )
        if mean is not None or std is not None:
            raise ConfigError(f"give either preset={preset!r} or mean/std, not both")
        m, s = NORMALIZATION_PRESETS[preset]
    else:
        dm, ds = NORMALIZATION_PRESETS[DEFAULT_PRESET]
        m = check_channel_stats("mean", dm if mean is None else mean)
        s = check_channel_stats("std", ds if std is None else std, nonzero=True)
    return m, s


def normalization_stats(preset: str) -> Stats:
    """The ``(mean, std)`` a preset name stands for, e.g. for ``denormalize(video, *normalization_stats(...))``.

    Args:
        preset: "kinetics", "imagenet" or "pytorchvideo".

    Returns:
        ``((r, g, b), (r, g, b))`` mean and std for pixel values in [0, 1].

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    return resolve_stats(preset, None, None)
