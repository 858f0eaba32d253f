#!/usr/bin/env python3
"""Generate docs/api.md from the docstrings of vidloader's public API (each package's ``__all__``).

    python scripts/api_docs.py           # write docs/api.md
    python scripts/api_docs.py --check   # exit 1 if docs/api.md is not what the code says
    python scripts/api_docs.py --audit   # list public names whose docstring lacks Args/Returns/Raises

Standard library only (inspect); run with the package importable (the dev venv, or PYTHONPATH=src).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "api.md"
PACKAGES = (
    "vidloader",
    "vidloader.dataset",
    "vidloader.sampling",
    "vidloader.backends",
    "vidloader.ops",
    "vidloader.transforms",
    "vidloader.loader",
)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _clean(text: str) -> str:
    return _ADDRESS.sub("", text)


def _signature(obj: Any, name: str) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return name
    return _clean(f"{name}{sig}")


def _doc(obj: Any) -> str:
    doc = inspect.getdoc(obj)
    return doc.strip() if doc else "*(no docstring)*"


def _home(obj: Any, package: str) -> bool:
    """Document a name once: in the package that defines it (``vidloader`` re-exports the rest)."""
    module = getattr(obj, "__module__", "") or ""
    if package == "vidloader":
        return module.startswith("vidloader._")
    return module == package or module.startswith(package + ".")


def _members(cls: type) -> list[tuple[str, Any]]:
    out = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") and name not in ("__iter__", "__len__", "__call__"):
            continue
        if name not in cls.__dict__:
            continue  # inherited (dataclass machinery, Protocol, ...)
        if isinstance(member, property) or inspect.isfunction(member) or inspect.ismethod(member):
            out.append((name, member))
    return out


def _render_class(qual: str, cls: type) -> list[str]:
    lines = [f"### class `{qual}`", "", "```python", _signature(cls, qual.rsplit(".", 1)[-1]), "```", ""]
    lines += [_doc(cls), ""]
    for name, member in _members(cls):
        if isinstance(member, property):
            lines += [f"#### property `{name}`", "", _doc(member), ""]
        else:
            lines += [f"#### `{_signature(member, name)}`", "", _doc(member), ""]
    return lines


def _render_name(package: str, name: str, obj: Any) -> list[str]:
    qual = f"{package}.{name}"
    if inspect.isclass(obj):
        return _render_class(qual, obj)
    if callable(obj):
        return [f"### `{_signature(obj, qual)}`", "", _doc(obj), ""]
    if inspect.ismodule(obj):
        return []
    return [f"### `{qual}`", "", "```python", _clean(f"{name} = {_value(obj)}"), "```", ""]


def _value(obj: Any) -> str:
    if isinstance(obj, (set, frozenset)):  # set order changes with hash seeds: sort it
        return f"{type(obj).__name__}({{{', '.join(sorted(map(repr, obj)))}}})"
    return repr(obj)


def public(package: str) -> list[tuple[str, Any]]:
    """(name, object) for each name in ``package.__all__``."""
    mod = importlib.import_module(package)
    return [(n, getattr(mod, n)) for n in sorted(getattr(mod, "__all__", []))]


def render() -> str:
    """The whole docs/api.md text."""
    lines = [
        "# vidloader API",
        "",
        "Generated from the docstrings by `python3 scripts/api_docs.py` (`python3 scripts/dev.py api`);",
        "a test fails when this file is stale. Names are listed under the package that defines them;",
        "`vidloader` re-exports the main ones.",
        "",
    ]
    for package in PACKAGES:
        names = [(n, o) for n, o in public(package) if not inspect.ismodule(o)]
        own = [(n, o) for n, o in names if not (inspect.isclass(o) or callable(o)) or _home(o, package)]
        if not own:
            continue
        doc = (importlib.import_module(package).__doc__ or "").strip().splitlines()
        lines += [f"## `{package}`", "", doc[0] if doc else "", ""]
        for name, obj in own:
            lines += _render_name(package, name, obj)
    return "\n".join(lines).rstrip() + "\n"


def _needs_args(obj: Any) -> bool:
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return any(p not in ("self", "cls") for p in params)


def audit() -> list[str]:
    """Public classes and functions with no docstring, or with parameters but no ``Args:`` section."""
    gaps = []
    for package in PACKAGES:
        for name, obj in public(package):
            if inspect.ismodule(obj) or not callable(obj) or not _home(obj, package):
                continue
            doc = inspect.getdoc(obj) or ""
            init = obj.__init__ if inspect.isclass(obj) else obj
            if not doc:
                gaps.append(f"{package}.{name}: no docstring")
            elif "Args:" not in doc and _needs_args(init) and not _is_dataclass_like(obj):
                gaps.append(f"{package}.{name}: no Args section")
    return sorted(set(gaps))


def _is_dataclass_like(obj: Any) -> bool:
    # Dataclasses document their fields in the class body; Protocols have no constructor to document;
    # exceptions say what they carry in the class docstring.
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return True
    return hasattr(obj, "__dataclass_fields__") or getattr(obj, "_is_protocol", False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is stale")
    ap.add_argument("--audit", action="store_true", help="list public names with missing docstring sections")
    args = ap.parse_args(argv)
    if args.audit:
        gaps = audit()
        print("\n".join(gaps) or "every public class and function has its docstring sections")
        return 1 if gaps else 0
    text = render()
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run python3 scripts/api_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
