"""The impersonate package imports nothing of rapidws (STYLE.md, dependency direction).

``aio/session.py`` resolves a profile and hands plain values down; the
profiles and the fingerprint functions depend on the standard library only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import rapidws.impersonate
from tests.protocol.test_layering import imported_modules

PACKAGE = "rapidws.impersonate"
SOURCES = sorted(Path(rapidws.impersonate.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_module_imports_only_the_stdlib_and_its_own_package(path: Path) -> None:
    ours = {
        name
        for name in imported_modules(path.read_text(encoding="utf-8"), PACKAGE)
        if name == "rapidws" or name.startswith("rapidws.")
    }
    assert {name for name in ours if not name.startswith(PACKAGE)} == set()


def test_the_package_modules_are_checked() -> None:
    assert {path.name for path in SOURCES} == {"__init__.py", "profiles.py", "fingerprint.py"}
