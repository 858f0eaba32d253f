"""docs/api.md is generated from the public docstrings (scripts/api_docs.py) and must match the code, and
every public class and function of vidloader has a docstring with an Args section where it takes any."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import api_docs  # noqa: E402


def test_api_md_is_current() -> None:
    current = (ROOT / "docs" / "api.md").read_text()
    assert current == api_docs.render(), "docs/api.md is stale: run python3 scripts/api_docs.py"
    assert api_docs.main(["--check"]) == 0


def test_every_public_name_has_a_docstring() -> None:
    assert [g for g in api_docs.audit() if g.endswith("no docstring")] == []


def test_loader_api_documents_args_returns_raises() -> None:
    gaps = [
        g
        for g in api_docs.audit()
        if g.startswith(("vidloader.loader", "vidloader.backends", "vidloader.sampling"))
    ]
    assert gaps == []
    doc = api_docs.render()
    for section in ("Args:", "Returns:", "Raises:"):
        assert section in doc
    assert "### class `vidloader.loader.VideoLoader`" in doc and "#### `state_dict(self)" in doc
