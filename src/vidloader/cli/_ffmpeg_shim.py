"""FFmpeg shared libraries for peers that load them by their standard names (torchcodec, SPDL), made from
the FFmpeg that PyAV's wheel bundles.

PyAV's manylinux wheel ships FFmpeg in ``site-packages/av.libs`` under hashed names
(``libavutil-5809ad29.so.60.26.102``, whose SONAME is that hashed name); torchcodec and SPDL ``dlopen``
``libavutil.so.60`` and friends, which a machine without a system FFmpeg does not have. A folder of
symlinks under the standard names, inside vidloader's cache folder, plus ``av.libs`` itself (the hashed
libraries find each other through ``$ORIGIN``, which is the symlink's folder, not the target's) on
``LD_LIBRARY_PATH`` lets them load PyAV's copy. The loader reads ``LD_LIBRARY_PATH`` once, at process
start, so these peers run in a child process started with ``ffmpeg_env()``; nothing outside the cache
folder changes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from ..dataset import default_cache_dir

# The libraries torchcodec and SPDL link: hashed wheel name "libavutil-5809ad29.so.60.26.102" -> the
# standard soname "libavutil.so.60" (name and major version).
LIBRARIES = ("avutil", "avcodec", "avformat", "avdevice", "avfilter", "swscale", "swresample")
_HASHED = re.compile(r"^lib(?P<name>[a-z]+)-[0-9a-f]{8}\.so\.(?P<major>\d+)(\.\d+)*$")


def bundled_ffmpeg_dir() -> Path | None:
    """PyAV's ``av.libs`` folder, or None when PyAV links a system FFmpeg (then no shim is needed)."""
    import av

    libs = Path(av.__file__).resolve().parent.parent / "av.libs"
    return libs if libs.is_dir() else None


def ffmpeg_version() -> str:
    """The FFmpeg version PyAV (and through the shim, torchcodec and SPDL) runs, e.g. ``"8.1.2"``."""
    import av

    return str(getattr(av, "ffmpeg_version_info", None) or av.library_versions["libavcodec"])


def standard_names(libs: Path) -> dict[str, Path]:
    """``{"libavutil.so.60": <hashed file>, ...}`` for the FFmpeg libraries found in ``libs``."""
    found: dict[str, Path] = {}
    for f in sorted(libs.iterdir()):
        m = _HASHED.match(f.name)
        if m and m["name"] in LIBRARIES:
            found[f"lib{m['name']}.so.{m['major']}"] = f
    return found


def ffmpeg_shim_dir(cache_dir: str | Path | None = None) -> Path | None:
    """The folder of standard-name symlinks (made once, reused), or None when PyAV bundles no FFmpeg.

    Raises:
        RuntimeError: the bundled folder lacks one of ``LIBRARIES`` (a wheel laid out differently).
    """
    import av

    libs = bundled_ffmpeg_dir()
    if libs is None:
        return None
    names = standard_names(libs)
    missing = [n for n in LIBRARIES if not any(k.startswith(f"lib{n}.so.") for k in names)]
    if missing:
        raise RuntimeError(f"PyAV's {libs} has no {', '.join(missing)}: cannot make an FFmpeg shim")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    shim = root / "ffmpeg-shim" / f"av-{av.__version__}-ffmpeg-{ffmpeg_version()}"
    if all((shim / k).resolve() == v.resolve() for k, v in names.items()):
        return shim
    shim.parent.mkdir(parents=True, exist_ok=True)
    # Built beside and renamed into place, so a concurrent run never sees half a folder.
    tmp = Path(tempfile.mkdtemp(prefix=".shim-", dir=shim.parent))
    for k, v in names.items():
        (tmp / k).symlink_to(v)
    shutil.rmtree(shim, ignore_errors=True)
    try:
        tmp.rename(shim)
    except OSError:  # another process won the race with an identical folder
        shutil.rmtree(tmp, ignore_errors=True)
    return shim


def ffmpeg_env(cache_dir: str | Path | None = None) -> dict[str, str]:
    """``os.environ`` plus the shim and PyAV's libraries first on ``LD_LIBRARY_PATH`` (for a child)."""
    env = dict(os.environ)
    shim = ffmpeg_shim_dir(cache_dir)
    libs = bundled_ffmpeg_dir()
    if shim is None or libs is None:
        return env
    parts = [str(shim), str(libs), *filter(None, env.get("LD_LIBRARY_PATH", "").split(os.pathsep))]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(parts)
    return env
