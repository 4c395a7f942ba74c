"""The protocol package is sans-I/O: it imports no event loop, socket or TLS.

Checked statically on the source: ``sys.modules`` cannot show it, because
importing ``rapidws.protocol`` first runs ``rapidws/__init__.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rapidws.protocol

PACKAGE = "rapidws.protocol"
PROTOCOL_DIR = Path(rapidws.protocol.__file__).parent
SOURCES = sorted(PROTOCOL_DIR.glob("*.py"))

FORBIDDEN = ("asyncio", "socket", "ssl", "rapidws.aio", "rapidws.net")


def imported_modules(source: str, package: str = PACKAGE) -> set[str]:
    """Every module an ``import`` statement in ``source`` may load, absolute.

    ``from X import y`` counts as importing both ``X`` and ``X.y``, since ``y``
    may be a submodule (``from .. import aio``).
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                assert node.module is not None
                module = node.module
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def forbidden_in(modules: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        for banned in FORBIDDEN
        if name == banned or name.startswith(banned + ".")
    )


class TestSansIO:
    def test_the_core_modules_are_checked(self) -> None:
        names = {path.name for path in SOURCES}
        assert {
            "__init__.py",
            "frames.py",
            "parser.py",
            "messages.py",
            "connection.py",
            "_accel.py",
            "_fallback.py",
        } <= names

    @pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
    def test_module_imports_no_io_layer(self, path: Path) -> None:
        assert forbidden_in(imported_modules(path.read_text(encoding="utf-8"))) == []


class TestImportCollector:
    """The checker itself catches every spelling of a forbidden import."""

    @pytest.mark.parametrize(
        ("source", "found"),
        [
            ("import asyncio", ["asyncio"]),
            ("import asyncio.tasks as t", ["asyncio.tasks"]),
            ("from socket import socket", ["socket", "socket.socket"]),
            ("import os, ssl", ["ssl"]),
            ("from ssl import SSLContext", ["ssl", "ssl.SSLContext"]),
            ("from ..aio import websocket", ["rapidws.aio", "rapidws.aio.websocket"]),
            ("from .. import net", ["rapidws.net"]),
            ("import rapidws.net.dial", ["rapidws.net.dial"]),
            (
                "from rapidws.aio.queues import RecvQueue",
                ["rapidws.aio.queues", "rapidws.aio.queues.RecvQueue"],
            ),
            ("def f():\n    import asyncio\n", ["asyncio"]),
            ("if TYPE_CHECKING:\n    from ssl import SSLContext\n", ["ssl", "ssl.SSLContext"]),
        ],
    )
    def test_forbidden_imports_are_found(self, source: str, found: list[str]) -> None:
        assert forbidden_in(imported_modules(source)) == found

    @pytest.mark.parametrize(
        "source",
        [
            "import sslkeylog",
            "import asyncio_compat",
            "from . import frames",
            "from ..errors import ProtocolError",
            "from .network import x",
        ],
    )
    def test_similar_names_are_not_flagged(self, source: str) -> None:
        assert forbidden_in(imported_modules(source)) == []

    def test_relative_imports_resolve_against_the_package(self) -> None:
        assert imported_modules("from ..errors import ProtocolError") == {
            "rapidws.errors",
            "rapidws.errors.ProtocolError",
        }
        assert imported_modules("from . import frames") == {
            "rapidws.protocol",
            "rapidws.protocol.frames",
        }
