"""Each loader option is defined once, in LoaderConfig: VideoLoader(dataset, config=...) takes one whole, its
keywords, docstring and read-only attributes are read from the fields, an unknown or contradictory
keyword is refused by name, an option set where it has no effect is refused, and loader/ never asks which
backend or plan type it holds."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest
import torch

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.dataset import textured_frames, write_video
from vidloader.transforms import PerClipTransform

KW = dict(batch_size=2, frames_per_clip=4, frame_stride=2, seed=3, num_workers=0, backend="pyav")
LOADER_SRC = Path(vl.__file__).parent / "loader"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("config_ds")
    paths = [write_video(root / f"v{i}.mp4", textured_frames(20, 32, 48, seed=i), gop=10) for i in range(5)]
    return vl.VideoDataset.from_paths(paths)


def rows(loader: vl.VideoLoader) -> list[tuple[list[int], list[list[int]], bytes]]:
    return [(b.video_index.tolist(), b.frame_index.tolist(), b.video.numpy().tobytes()) for b in loader]


def test_config_object_gives_what_the_keywords_give(dataset: vl.VideoDataset) -> None:
    cfg = vl.LoaderConfig(clips_per_video=2, **KW)  # type: ignore[arg-type]
    by_keywords = vl.VideoLoader(dataset, clips_per_video=2, **KW)  # type: ignore[arg-type]
    by_config = vl.VideoLoader(dataset, config=cfg)
    assert by_config.config is cfg and by_keywords.config == cfg
    want = rows(by_keywords)
    assert len(want) == 5 and rows(by_config) == want
    assert by_config.state_dict() == by_keywords.state_dict()
    # A config changed with dataclasses.replace is validated again.
    threads = vl.VideoLoader(dataset, config=dataclasses.replace(cfg, num_workers=2, prefetch=3))
    assert (threads.num_workers, threads.prefetch) == (2, 3) and rows(threads) == want
    with pytest.raises(vl.ConfigError, match="prefetch must be >= 1"):
        dataclasses.replace(cfg, num_workers=2, prefetch=0)


def test_config_and_keywords_together_or_a_wrong_config_are_refused(dataset: vl.VideoDataset) -> None:
    cfg = vl.LoaderConfig(**KW)  # type: ignore[arg-type]
    with pytest.raises(vl.ConfigError, match=r"not both \(got config= and batch_size, seed\)"):
        vl.VideoLoader(dataset, config=cfg, seed=1, batch_size=4)
    with pytest.raises(vl.ConfigError, match=r"config must be a vidloader\.LoaderConfig, got SamplingConfig"):
        vl.VideoLoader(dataset, config=vl.SamplingConfig(frames_per_clip=4))  # type: ignore[arg-type]


def test_unknown_keyword_is_named_with_a_suggestion(dataset: vl.VideoDataset) -> None:
    with pytest.raises(vl.ConfigError) as err:
        vl.VideoLoader(dataset, batch_size=2, frames_per_clip=4, num_worker=2)
    msg = str(err.value)
    assert "unknown option 'num_worker'" in msg and "did you mean 'num_workers'?" in msg
    assert all(f.name in msg for f in dataclasses.fields(vl.LoaderConfig))  # the options are listed
    with pytest.raises(vl.ConfigError, match="unknown option 'zzz'; the options are frames_per_clip"):
        vl.VideoLoader(dataset, batch_size=2, frames_per_clip=4, zzz=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(sampling="sliding", clips_per_video=3), r"clips_per_video=3 has no effect here: .*'uniform'"),
        (dict(sampling="random", clip_step=4), r"clip_step=4 has no effect here: .*sampling='sliding'"),
        (dict(sampling="uniform", clips_per_video=2, clip_step=4), "clip_step=4 has no effect here"),
        (
            dict(num_workers=0, prefetch=4),
            r"prefetch=4 has no effect here: it applies only with num_workers > 0",
        ),
        (dict(num_workers=0, worker_type="process"), r"worker_type='process' has no effect here"),
    ],
)
def test_an_option_that_has_no_effect_is_refused(options: dict, message: str) -> None:
    base = {k: v for k, v in KW.items() if k not in options}
    with pytest.raises(vl.ConfigError, match=message):
        vl.LoaderConfig(**base, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        dict(sampling="sliding", clip_step=4),
        dict(sampling="random", clips_per_video=3, clips_per_video_mode="without_replacement", clip_step=4),
        dict(sampling="uniform", clips_per_video=3),
        dict(num_workers=2, prefetch=4, worker_type="process"),
        dict(num_workers=0, shared_decode=False),
        dict(sampling="sliding", clips_per_video=1),  # the default is never refused
    ],
)
def test_an_option_where_it_applies_is_accepted(options: dict) -> None:
    base = {k: v for k, v in KW.items() if k not in options}
    cfg = vl.LoaderConfig(**base, **options)  # type: ignore[arg-type]
    assert all(getattr(cfg, k) == v for k, v in options.items())


def test_signature_docstring_and_attributes_come_from_the_fields(dataset: vl.VideoDataset) -> None:
    fields = {f.name: f for f in dataclasses.fields(vl.LoaderConfig)}
    params = inspect.signature(vl.VideoLoader).parameters
    names = list(params)
    assert names[:3] == ["dataset", "batch_size", "frames_per_clip"] and names[-1] == "config"
    assert set(params) - {"dataset", "config"} == set(fields)
    for name, f in fields.items():
        p = params[name]
        assert p.kind is p.KEYWORD_ONLY
        assert p.default == (p.empty if f.default is dataclasses.MISSING else f.default), name
    doc = inspect.getdoc(vl.VideoLoader) or ""
    args = doc[doc.index("Args:") : doc.index("Raises:")]
    for name, f in fields.items():
        assert f"\n    {name}: {f.metadata['doc'].splitlines()[0]}" in args, name
    assert "Applies only with num_workers > 0." in args and "\n    config: " in args
    loader = vl.VideoLoader(dataset, sampling="uniform", clips_per_video=2, **KW)  # type: ignore[arg-type]
    assert loader.sampling == "uniform" and loader.batch_size == 2 and loader.frame_stride == 2
    assert loader.device == torch.device("cpu") and (loader.rank, loader.world_size) == (0, 1)
    for name in set(fields) - {"backend"}:
        assert getattr(loader, name) is getattr(loader.config, name), name
        with pytest.raises(AttributeError):
            setattr(loader, name, 1)
    assert loader.config.backend == "pyav" and loader.backend.name == "pyav"  # the object, chosen from it
    assert "The ``prefetch`` option (read-only)" in (vl.VideoLoader.prefetch.__doc__ or "")


def test_a_loader_config_is_the_sampling_config_of_its_plan(dataset: vl.VideoDataset) -> None:
    loader = vl.VideoLoader(dataset, clips_per_video=3, **KW)  # type: ignore[arg-type]
    cfg = loader.config
    assert isinstance(cfg, vl.SamplingConfig)
    assert loader.clip_plan(1) == list(vl.plan_epoch(dataset, cfg, seed=3, epoch=1))
    sampling = vl.SamplingConfig(frames_per_clip=4, frame_stride=2, clips_per_video=3)
    assert cfg.to_json() == sampling.to_json()  # states record the sampling fields only, as before
    assert cfg.state_fields() == {**sampling.to_json(), "seed": 3, "batch_size": 2, "drop_last": False}


def test_a_per_clip_transform_is_wrapped_once(dataset: vl.VideoDataset) -> None:
    def per_clip(clip: torch.Tensor) -> torch.Tensor:
        return clip.float()

    cfg = vl.LoaderConfig(transform=per_clip, transform_kind="per_clip", **KW)  # type: ignore[arg-type]
    again = dataclasses.replace(cfg, seed=4)
    for c in (cfg, again):
        assert c.transform is per_clip and isinstance(c.clip_transform, PerClipTransform)
        assert c.clip_transform.fn is per_clip
    assert again.output_layout is cfg.output_layout is None and again.layout == "NCTHW"
    plain = vl.LoaderConfig(**KW)  # type: ignore[arg-type]
    assert plain.output_layout == dataclasses.replace(plain, transform=None).output_layout == "NCTHW"


def test_loader_never_asks_which_backend_or_plan_it_has() -> None:
    concrete = {"Backend", "PyAVBackend", "DALIBackend", "PreparedClip", "DecodedClip", "WithAudio"}
    concrete |= {"BatchFrames", "DecodeTask", "ClipRequest", "ClipPlan", "ClipSpec"}
    found = []
    for path in sorted(LOADER_SRC.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                found += [f"{path.name}:{node.lineno} {n}" for n in sorted(names & concrete)]
    assert found == []
    # The core's eleven concepts (config, state, the batch, batch memory shared with process workers,
    # workers, decode, collecting a batch under its deadline, batches in flight with their claims on later
    # batches, assembly, clip-aligned audio, hand-off) plus the loader that runs them.
    assert len([p for p in LOADER_SRC.glob("*.py") if p.name != "__init__.py"]) <= 12
