"""Locations: local paths and URLs told apart, and one resolved against another, by one set of rules.

Every place that must know whether a string names a URL (the index, manifests, the probe cache, the file
layer) asks ``is_remote``; every relative path (in a manifest, in an index) is resolved by ``resolve`` or
``join_location``. The rules, each decided here once:

- A URL is ``<scheme>://...`` with a scheme of two or more characters (a letter, then letters, digits,
  ``+``, ``-`` or ``.``, as RFC 3986 spells schemes): ``s3://b/k``, ``https://h/a.mp4?sig=...``,
  ``file:///data/a.mp4`` (read through fsspec like any URL), and fsspec's chained URLs
  (``tar://member::s3://b/shard.tar``, a URL by its first link).
- One letter and a colon is a Windows drive, never a scheme: ``c://x``, ``C:/data/a.mp4`` and
  ``C:\\data\\a.mp4`` are local paths, and absolute ones (a manifest written on Windows names its files
  that way; joining one under another folder would name a file that exists nowhere).
- A relative path is joined to a folder and normalised lexically: ``..`` climbs (as the index's relative
  paths do), ``.`` and doubled slashes go. A symbolic link is not followed to do it.
- Against a URL, ``..`` climbs the URL's path but never past its root: the scheme and the host (or bucket)
  stay (``s3://b/k`` + ``../../x`` is ``s3://b/x``, as RFC 3986 resolves it). A base URL's query
  (``?X-Amz-Signature=...``) belongs to that object and is dropped; a relative path's own query is kept
  and left untouched by the normalisation.
- Against a chained URL (a tar member), a relative path names another member of the same archive:
  ``tar://d/m.csv::s3://b/s.tar`` + ``x.mp4`` is ``tar://d/x.mp4::s3://b/s.tar``.
- An absolute path or a URL given as the relative part is returned as it is.
"""

from __future__ import annotations

import os
import posixpath
import re

# The patterns are RE2's syntax as well as Python's: IndexRows applies them to a whole column in Arrow.
_URL_HEAD = r"[A-Za-z][A-Za-z0-9+.-]+://"
# A URL.
URL_PATTERN = rf"^{_URL_HEAD}"
# A URL, a POSIX absolute path, or a Windows drive path.
ABSOLUTE_PATTERN = rf"^(?:{_URL_HEAD}|/|[A-Za-z]:[/\\])"
# What a relative path must not hold for prefix + path to equal the normalised join (``join_parts``): a "."
# or ".." segment, a doubled or trailing slash, or nothing at all.
UNNORMALISED_PATTERN = r"(?:^|/)\.\.?(?:/|$)|//|/$|^$"
_URL = re.compile(_URL_HEAD)
_ABSOLUTE = re.compile(ABSOLUTE_PATTERN)
_TAR = "tar://"


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL, read through the store layer (fsspec), rather than a local path.

    Args:
        path: a local path or a URL.

    Returns:
        True for a URL with a scheme (``s3://``, ``https://``, ``file://``, ``tar://...::...``); False for a
        local path, a Windows drive path (``C:/data``, ``c://x``) included.
    """
    return _URL.match(str(path)) is not None


def is_absolute(path: str) -> bool:
    """Whether ``path`` is a URL or an absolute local path (POSIX, or a Windows drive path)."""
    return _ABSOLUTE.match(path) is not None


def folder_of(location: str) -> str:
    """The folder a file's relative paths resolve against: its parent folder, or its URL's "folder".

    Args:
        location: a local path or URL of a file (a manifest, an index).

    Returns:
        The folder: a local path as given (relative stays relative), a URL without its query.
    """
    if not is_remote(location):
        return os.path.dirname(location)
    head, sep, chain = location.partition("::")
    scheme, rest = head.split("://", 1)
    if sep:  # an archive member: its folder inside the archive
        return f"{scheme}://{posixpath.dirname(rest)}{sep}{chain}"
    authority, _, path = rest.split("?", 1)[0].split("#", 1)[0].partition("/")
    parent = posixpath.dirname(path)
    return f"{scheme}://{authority}" + (f"/{parent}" if parent else "")


def resolve(folder: str, relative: str) -> str:
    """``relative`` resolved against ``folder`` by the rules of this module.

    Args:
        folder: a local folder or a URL's folder.
        relative: a path relative to it, or an absolute path or URL (returned as it is).

    Returns:
        The location, normalised.
    """
    if is_absolute(relative):
        return relative
    if not is_remote(folder):
        return os.path.normpath(os.path.join(folder, relative))
    head, sep, chain = folder.partition("::")
    scheme, rest = head.split("://", 1)
    if sep:
        authority, path = "", rest
    else:
        authority, _, path = rest.partition("/")
    rel_path, q, query = relative.partition("?")
    joined = posixpath.normpath(posixpath.join("/" + path, rel_path))
    # normpath keeps a leading "//" (POSIX leaves its meaning open); a URL's path has one slash.
    joined = "/" + joined.lstrip("/")
    if sep:
        joined = joined[1:]  # a member name inside an archive has no leading slash
    return f"{scheme}://{authority}{joined}{q}{query}{sep}{chain}"


def join_parts(folder: str) -> tuple[str, str]:
    """(prefix, suffix) such that ``prefix + p + suffix == resolve(folder, p)`` for every relative path ``p``
    that is not absolute and does not match ``UNNORMALISED_PATTERN``: how a whole column of an index's
    paths is resolved at once.

    Args:
        folder: a local folder or a URL's folder.

    Returns:
        The two strings.
    """
    prefix, _, suffix = resolve(folder, "\0").partition("\0")
    return prefix, suffix


def join_location(base: str, relative: str) -> str:
    """``relative`` resolved against the folder of ``base``.

    A relative path is joined and normalised lexically (``..`` climbs; against a URL never past its host
    or bucket, and the base URL's query is dropped; against a tar member URL it names another member of
    the same archive). An absolute path, a URL or a Windows drive path (``C:/...``) is returned as it is.

    Args:
        base: a local path or URL of a file (a manifest).
        relative: a path relative to its folder, or an absolute path or URL (returned as it is).

    Returns:
        The resolved location.
    """
    return resolve(folder_of(base), relative)


def tar_member_url(shard: str, member: str) -> str:
    """The URL of a member of an uncompressed tar shard (fsspec's chained-URL spelling).

    Args:
        shard: the tar file's path or URL.
        member: the member's name inside it.

    Returns:
        ``tar://<member>::<shard>``.
    """
    return f"{_TAR}{member}::{shard}"


def tar_member(url: str) -> tuple[str, str] | None:
    """(member name, shard location) of a tar member URL; None for any other location."""
    if not url.startswith(_TAR) or "::" not in url:
        return None
    member, shard = url[len(_TAR) :].split("::", 1)
    return member, shard
