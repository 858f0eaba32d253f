"""An option of a config dataclass, defined once: its default, its doc and, where it means something only in
some modes, when it applies. Signatures, docstrings, docs/api.md and the refusal of an option set where it
has no effect all read these same words from the field's metadata."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import MISSING, Field, field, fields
from operator import attrgetter
from typing import Any

from ._errors import ConfigError

_INDENT = " " * 4


def option(
    default: Any = MISSING,
    *,
    doc: str,
    applies: Callable[[Any], bool] | None = None,
    when: str = "",
) -> Any:
    """A dataclass field carrying its documentation.

    Args:
        default: the default value; left out for a required option.
        doc: what the option does, as one Google-style ``Args`` entry (continuation lines may be indented
            freely; they are re-indented).
        applies: for an option that only some modes read, ``applies(config)`` says whether this config does;
            a non-default value where it does not is refused (see ``refuse_ignored``).
        when: the modes it applies in, as words that follow "applies only" (e.g. ``'with num_workers > 0'``).

    Returns:
        The ``dataclasses.field`` to assign in the class body.
    """
    if (applies is None) != (not when):
        raise TypeError("give applies= and when= together")
    meta = {"doc": textwrap.dedent(doc).strip(), "applies": applies, "when": when}
    return field(default=default, metadata=meta)


def option_doc(f: Field) -> str:
    """The doc of an option field, with the modes it applies in appended (empty for a plain field)."""
    doc = f.metadata.get("doc", "")
    when = f.metadata.get("when", "")
    return f"{doc} Applies only {when}." if when else doc


def refuse_ignored(config: Any, names: Iterable[str]) -> None:
    """Refuse a non-default value given to an option this config does not read.

    Args:
        config: the dataclass instance (already validated field by field).
        names: the fields to check.

    Raises:
        ConfigError: naming the option, its value and the modes it applies in.
    """
    wanted = set(names)
    for f in fields(config):
        applies = f.metadata.get("applies")
        if f.name not in wanted or applies is None:
            continue
        value = getattr(config, f.name)
        if value != f.default and not applies(config):
            raise ConfigError(
                f"{f.name}={value!r} has no effect here: it applies only {f.metadata['when']}; leave it at "
                f"its default ({f.default!r}) or change the mode"
            )


def args_section(entries: Iterable[tuple[str, str]]) -> str:
    """A Google-style ``Args:`` section from (name, doc) pairs, each doc's later lines indented under it."""
    lines = ["Args:"]
    for name, doc in entries:
        first, _, rest = doc.partition("\n")
        lines.append(f"{_INDENT}{name}: {first}")
        lines += [f"{_INDENT * 2}{line}".rstrip() for line in textwrap.dedent(rest).splitlines()]
    return "\n".join(lines)


def with_args(doc: str | None, entries: Iterable[tuple[str, str]]) -> str:
    """``doc`` with an ``Args:`` section inserted before its ``Raises:`` section (or at its end).

    Args:
        doc: the docstring as written (summary, prose, ``Raises:``).
        entries: (name, doc) pairs for the section.

    Returns:
        The docstring, without the source's indentation.
    """
    head, sep, tail = inspect.cleandoc(doc or "").partition("\nRaises:")
    parts = [head.rstrip(), args_section(entries)]
    if sep:
        parts.append("Raises:" + tail)
    return "\n\n".join(parts) + "\n"


def documented(cls: type) -> type:
    """Class decorator: the dataclass's docstring gains an ``Args:`` section read from its option fields.

    Args:
        cls: a dataclass whose fields were made with ``option``.

    Returns:
        ``cls``, its ``__doc__`` extended.
    """
    cls.__doc__ = with_args(cls.__doc__, [(f.name, option_doc(f)) for f in fields(cls)])
    return cls


def keyword_parameters(cls: type, *, first: Iterable[str] = ()) -> list[inspect.Parameter]:
    """Keyword-only parameters for a dataclass's fields: ``first``, then the required ones, then the rest, each
    group in field order.

    Args:
        cls: the dataclass.
        first: fields to put at the front, in this order.

    Returns:
        One ``inspect.Parameter`` per field, with its default and annotation.
    """
    front = list(first)

    def rank(f: Field) -> tuple[int, int]:
        if f.name in front:
            return 0, front.index(f.name)
        return (1 if f.default is MISSING else 2), 0

    return [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if f.default is MISSING else f.default,
            annotation=f.type,
        )
        for f in sorted(fields(cls), key=rank)
    ]


def expose_options(
    owner: type,
    config_cls: type,
    *,
    before: Sequence[tuple[str, str]],
    after: Sequence[tuple[str, str]],
    first: Sequence[str] = (),
    own: Collection[str] = (),
) -> None:
    """Give a class that holds a config as ``self.config`` the config's options as its keywords: the
    signature of ``owner.__init__``, the ``Args:`` of its docstring, and one read-only property per option.

    Args:
        owner: the class.
        config_cls: the config dataclass whose fields are the options.
        before: (name, doc) of ``__init__``'s own parameters that come ahead of the options.
        after: (name, doc) of its own keyword parameters that come after them.
        first: options to list first (then the required ones, then the rest).
        own: options that get no property (the owner defines that attribute itself).
    """
    init = vars(owner)["__init__"]
    own_params = inspect.signature(
        init
    ).parameters  # self, the ``before`` ones, the ``after`` ones, **options
    params = keyword_parameters(config_cls, first=first)
    init.__signature__ = inspect.signature(init).replace(
        parameters=[
            own_params["self"],
            *(own_params[name] for name, _ in before),
            *params,
            *(own_params[name] for name, _ in after),
        ]
    )
    docs = {f.name: option_doc(f) for f in fields(config_cls)}
    owner.__doc__ = with_args(owner.__doc__, [*before, *((q.name, docs[q.name]) for q in params), *after])
    for name, doc in docs.items():
        if name not in own:
            setattr(
                owner,
                name,
                property(attrgetter(f"config.{name}"), doc=f"The ``{name}`` option (read-only): {doc}"),
            )
