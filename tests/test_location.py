"""The one set of rules for locations: which strings are URLs, and how a relative path resolves against a
local folder, a URL, a signed URL, a Windows drive path or a tar member (the cases two helpers disagreed on)."""

from __future__ import annotations

import os
import re

import pytest

from vidloader.dataset import is_remote, join_location, tar_member_url
from vidloader.dataset._location import (
    ABSOLUTE_PATTERN,
    UNNORMALISED_PATTERN,
    folder_of,
    is_absolute,
    join_parts,
    resolve,
    tar_member,
)


@pytest.mark.parametrize(
    ("location", "remote", "absolute"),
    [
        ("s3://b/k", True, True),
        ("https://h/a.mp4?X-Amz-Signature=abc", True, True),
        ("file:///x", True, True),
        ("git+https://h/a.mp4", True, True),
        ("tar://videos/a.mp4::s3://b/shard.tar", True, True),
        ("c://x", False, True),  # a drive letter, not a one-letter scheme
        ("C:/data/a.mp4", False, True),
        ("C:\\data\\a.mp4", False, True),
        ("/data/a.mp4", False, True),
        ("data/a.mp4", False, False),
        ("../a.mp4", False, False),
        ("data/http://x.mp4", False, False),  # "://" later in a path does not make a URL
        ("1s://x", False, False),  # a scheme starts with a letter
    ],
)
def test_what_is_a_url_and_what_is_absolute(location: str, remote: bool, absolute: bool) -> None:
    assert is_remote(location) is remote
    assert is_absolute(location) is absolute
    assert (re.match(ABSOLUTE_PATTERN, location) is not None) is absolute


@pytest.mark.parametrize(
    ("base", "relative", "expected"),
    [
        # Local: joined to the folder and normalised; relative stays relative.
        ("/data/m.csv", "videos/a.mp4", "/data/videos/a.mp4"),
        ("/data/sub/m.csv", "../videos/./a.mp4", "/data/videos/a.mp4"),
        ("data/m.csv", "a/../b.mp4", "data/b.mp4"),
        ("m.csv", "a.mp4", "a.mp4"),
        ("/data/m.csv", "/elsewhere/a.mp4", "/elsewhere/a.mp4"),
        # Windows drive paths are local, and absolute as the relative part.
        ("/data/m.csv", "C:/data/a.mp4", "C:/data/a.mp4"),
        ("/data/m.csv", "c://x", "c://x"),
        ("c://x/m.csv", "a.mp4", "c:/x/a.mp4"),
        # URLs: ".." climbs the path, never past the bucket or host; the base's query is dropped.
        ("s3://b/k/m.csv", "a.mp4", "s3://b/k/a.mp4"),
        ("s3://b/k/m.csv", "../x/a.mp4", "s3://b/x/a.mp4"),
        ("s3://b/m.csv", "../../x.mp4", "s3://b/x.mp4"),
        ("https://h/d/m.csv?X-Amz-Signature=a/b", "v/a.mp4", "https://h/d/v/a.mp4"),
        ("https://h/d/m.csv", "a.mp4?sig=x/../y", "https://h/d/a.mp4?sig=x/../y"),
        ("file:///data/m.csv", "a/../b.mp4", "file:///data/b.mp4"),
        ("file:///m.csv", "a.mp4", "file:///a.mp4"),
        ("memory://bucket/data/i.parquet", "cat/v1.mp4", "memory://bucket/data/cat/v1.mp4"),
        ("s3://b/k/m.csv", "https://h/a.mp4", "https://h/a.mp4"),
        ("/data/m.csv", "s3://b/a.mp4", "s3://b/a.mp4"),
        # A tar member's relative path names another member of the same archive.
        ("tar://d/m.csv::s3://b/s.tar", "x.mp4", "tar://d/x.mp4::s3://b/s.tar"),
        ("tar://m.csv::/data/s.tar", "../x.mp4", "tar://x.mp4::/data/s.tar"),
        ("/data/m.csv", "tar://x.mp4::/data/s.tar", "tar://x.mp4::/data/s.tar"),
    ],
)
def test_join_location(base: str, relative: str, expected: str) -> None:
    assert join_location(base, relative) == expected


def test_folder_of() -> None:
    assert folder_of("/data/i.parquet") == "/data" and folder_of("i.parquet") == ""
    assert folder_of("s3://b/i.parquet") == "s3://b" and folder_of("s3://b/k/i.parquet") == "s3://b/k"
    assert folder_of("https://h/d/i.parquet?sig=a/b") == "https://h/d"
    assert folder_of("file:///data/i.parquet") == "file:///data"


@pytest.mark.parametrize(
    "folder",
    ["/data", "/", "data", "", "s3://b", "s3://b/k", "file://", "file:///d", "tar://d::s3://b/s.tar"],
)
@pytest.mark.parametrize("relative", ["a.mp4", "cat/v1.mp4", "a.mp4?x=1", "../a.mp4", "a//b.mp4", "a/./b"])
def test_join_parts_agree_with_resolve(folder: str, relative: str) -> None:
    clean = re.search(UNNORMALISED_PATTERN, relative) is None
    assert clean is (relative in ("a.mp4", "cat/v1.mp4", "a.mp4?x=1"))
    if clean:
        prefix, suffix = join_parts(folder)
        assert prefix + relative + suffix == resolve(folder, relative)


def test_local_resolve_is_the_normalised_join() -> None:
    assert resolve("/data/x", "../y/./a.mp4") == os.path.normpath("/data/y/a.mp4")


def test_tar_member_urls_round_trip() -> None:
    url = tar_member_url("s3://b/shards/s-000.tar", "videos/a.mp4")
    assert url == "tar://videos/a.mp4::s3://b/shards/s-000.tar"
    assert tar_member(url) == ("videos/a.mp4", "s3://b/shards/s-000.tar")
    assert tar_member("s3://b/a.mp4") is None and tar_member("tar://a.mp4") is None
