"""train_example.py's job configuration: YAML files plus ``section.key=value`` overrides, validated
against the code. It lives beside the script, not in the library: vidloader holds no training defaults.

The ``loader`` and ``val_loader`` sections take exactly VideoLoader's keyword names (derived from its
signature, so there is no second set of names); the other sections are the training script's.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from pathlib import Path
from typing import Any

import yaml

from vidloader import ConfigError, VideoLoader

# Keys the loader sections may not set: the training script owns them.
_LOADER_OWNED = {"dataset", "config", "transform", "transform_kind", "device", "rank", "world_size", "dtype"}

# Keys whose value may take more than one form (transform.size: 112 or [h, w]); their users check them.
_ANY_TYPE = {("transform", "size")}

DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {
        "root": "data/demo",  # folder with train/ and val/, each root/<class>/<video>
        "train_manifest": None,
        "val_manifest": None,
        "demo": True,  # build the embedded demo dataset at `root` when it is missing
        "demo_seed": 0,
        "demo_mixed": False,  # the demo with mixed frame sizes, aspect ratios, fps and short clips
        "on_error": "skip",
    },
    "loader": {"batch_size": 8, "frames_per_clip": 8, "frame_stride": 2, "num_workers": 2, "seed": 0},
    "val_loader": {"sampling": "uniform", "clips_per_video": 2, "shuffle": False},
    "transform": {
        "size": 112,
        "scale": [0.3, 1.0],
        "ratio": [0.75, 1.3333333],
        "flip": True,  # off for data whose labels are direction-sensitive (the demo)
        "mean": [0.45, 0.45, 0.45],
        "std": [0.225, 0.225, 0.225],
        "jitter": None,  # (brightness, contrast, saturation) strengths, or null
        "eval_crops": 1,  # spatial views per clip at evaluation: 1 (center) or 3
        "eval_resize_short": None,  # evaluate "short side to S, center crop size" (null: the whole square)
    },
    "model": {"name": "r3d_18", "weights": None, "compile": False, "channels_last": True},
    "optim": {
        "name": "adamw",
        "lr": 1e-3,
        "weight_decay": 0.05,
        "momentum": 0.9,
        "warmup_epochs": 1.0,
        "label_smoothing": 0.0,
    },
    "train": {
        "epochs": 10,
        "device": "auto",  # auto | cpu | cuda
        "amp": "auto",  # auto (bf16 on CUDA, off on CPU) | bf16 | fp16 | off
        "accum_steps": 1,
        "ckpt_every": 0,  # steps; 0 = only at epoch end
        "threads": 0,  # torch intra-op threads on CPU; 0 = torch's default
        "max_steps_per_epoch": 0,  # 0 = whole epoch (tests use a few)
        "log_videos": False,  # write the video indices each rank saw (tests check DDP sharding)
        "out": None,  # default runs/<config name>
    },
}


def loader_keys() -> set[str]:
    params = inspect.signature(VideoLoader.__init__).parameters
    return {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY} - _LOADER_OWNED


def _loader_value(key: str, value: Any) -> Any:
    # VideoLoader validates its own values; only YAML's string-for-exponent numbers need help here.
    if isinstance(value, str) and key in ("decode_timeout", "target_fps"):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def _allowed(section: str) -> set[str]:
    if section in ("loader", "val_loader"):
        return loader_keys()
    return set(DEFAULTS[section])


def _coerce(section: str, key: str, value: Any, where: str) -> Any:
    """Check a value against its default's type (scripts' sections only; VideoLoader checks its own).

    YAML 1.1 reads ``1e-3`` as a string, so numbers written that way are converted here."""
    default = DEFAULTS[section].get(key)
    if default is None or value is None or (section, key) in _ANY_TYPE:
        return value
    expected: type
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), bool
    elif isinstance(default, (int, float)):
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value) if isinstance(default, float) else int(value)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, int) and isinstance(value, float):
            ok = False  # epochs=2.5: say so rather than truncate
        expected = type(default)
    elif isinstance(default, str):
        ok, expected = isinstance(value, str), str
    elif isinstance(default, list):
        ok, expected = isinstance(value, (list, tuple)), list
        value = list(value) if ok else value
    else:
        return value
    if not ok:
        raise ConfigError(
            f"{where}: {section}.{key}={value!r} should be of type {expected.__name__} (like the default {default!r})"
        )
    return float(value) if isinstance(default, float) else value


def _merge(base: dict[str, Any], new: dict[str, Any], where: str) -> None:
    if not isinstance(new, dict):
        raise ConfigError(f"{where}: expected a mapping of sections, got {type(new).__name__}")
    for section, values in new.items():
        if section not in DEFAULTS:
            raise ConfigError(f"{where}: unknown section {section!r}; sections: {sorted(DEFAULTS)}")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: section {section!r} must be a mapping")
        allowed = _allowed(section)
        for key, value in values.items():
            if key not in allowed:
                if section in ("loader", "val_loader") and key in _LOADER_OWNED:
                    raise ConfigError(
                        f"{where}: {section}.{key} is set by the training script, not the config "
                        f"(device: train.device; rank/world_size: torchrun); allowed in {section!r}: {sorted(allowed)}"
                    )
                raise ConfigError(
                    f"{where}: unknown key {section}.{key}; allowed in {section!r}: {sorted(allowed)}"
                )
            if section in ("loader", "val_loader"):
                base[section][key] = _loader_value(key, value)
            else:
                base[section][key] = _coerce(section, key, value, where)


def parse_override(text: str) -> dict[str, dict[str, Any]]:
    """``section.key=value`` (value parsed as YAML: numbers, lists, null, true/false)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. loader.batch_size=4)")
    dotted, raw = text.split("=", 1)
    section, key = dotted.split(".", 1)
    return {section.strip(): {key.strip(): yaml.safe_load(raw) if raw.strip() else None}}


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """Defaults, then the YAML file, then overrides; every key checked. Adds ``name`` (the file's stem)."""
    cfg = copy.deepcopy(DEFAULTS)
    name = "default"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        with path.open() as f:
            data = yaml.safe_load(f) or {}
        # A saved resolved config (<out>/config.yaml) carries its run's name; a config file is named by its stem.
        name = str(data.pop("name", None) or path.stem) if isinstance(data, dict) else path.stem
        _merge(cfg, data, str(path))
    for text in overrides:
        _merge(cfg, parse_override(text), f"override {text!r}")
    cfg_out: dict[str, Any] = {"name": name, **cfg}
    return cfg_out


def dump_config(cfg: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False))
