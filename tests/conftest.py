"""Fixtures shared by the whole suite, in sections."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator, Mapping

import pytest

from tests.peers.certs import TLSFiles, write_tls_files
from tests.peers.launcher import PEER_NAMES, Peer, PeerName, PeerPool

# ---------------------------------------------------------------------------
# TLS material: a throwaway CA, a server cert for localhost and 127.0.0.1,
# a client cert for client@example (tests/peers/certs.py)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return write_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def ca_path(tls_files: TLSFiles) -> str:
    """PEM bundle of the CA that signed every peer's server certificate."""
    return str(tls_files.ca)


@pytest.fixture(scope="session")
def client_cert_paths(tls_files: TLSFiles) -> tuple[str, str]:
    """``(certfile, keyfile)`` of a client certificate that ``mtls_peer`` accepts."""
    return str(tls_files.client_cert), str(tls_files.client_key)


# ---------------------------------------------------------------------------
# The machine's proxy settings: rapidws honours http_proxy and friends
# (trust_env), so they would send every loopback test through that proxy.
# ---------------------------------------------------------------------------

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(scope="session", autouse=True)
def no_proxy_from_the_machine() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in _PROXY_VARIABLES:
            patch.delenv(name, raising=False)
            patch.delenv(name.upper(), raising=False)
        yield


# ---------------------------------------------------------------------------
# Real peers: third-party WebSocket servers in subprocesses, started on first
# use and stopped at the end of the session (tests/peers/launcher.py)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def peer_pool(tls_files: TLSFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerPool]:
    pool = PeerPool(tls_files, log_dir=tmp_path_factory.mktemp("peer-logs"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def websockets_peer(peer_pool: PeerPool) -> Peer:
    return peer_pool.get("websockets")


@pytest.fixture(scope="session")
def aiohttp_peer(peer_pool: PeerPool) -> Peer:
    return peer_pool.get("aiohttp")


@pytest.fixture(scope="session")
def ws_peer(peer_pool: PeerPool) -> Peer:
    return peer_pool.get("ws")


@pytest.fixture(scope="session")
def websockets_wss_peer(peer_pool: PeerPool) -> Peer:
    return peer_pool.get("websockets", tls=True)


@pytest.fixture(scope="session")
def aiohttp_wss_peer(peer_pool: PeerPool) -> Peer:
    return peer_pool.get("aiohttp", tls=True)


@pytest.fixture(scope="session")
def ws_wss_peer(peer_pool: PeerPool) -> Peer:
    return peer_pool.get("ws", tls=True)


@pytest.fixture(params=PEER_NAMES)
def peer(request: pytest.FixtureRequest, peer_pool: PeerPool) -> Peer:
    """Each peer over plain TCP: ``ws://127.0.0.1:PORT``."""
    name: PeerName = request.param
    return peer_pool.get(name)


@pytest.fixture(params=PEER_NAMES, ids=[f"{name}-tls" for name in PEER_NAMES])
def wss_peer(request: pytest.FixtureRequest, peer_pool: PeerPool) -> Peer:
    """Each peer over TLS: ``wss://localhost:PORT``, verified with ``ca_path``."""
    name: PeerName = request.param
    return peer_pool.get(name, tls=True)


@pytest.fixture(
    params=[(name, tls) for tls in (False, True) for name in PEER_NAMES],
    ids=[name + ("-tls" if tls else "") for tls in (False, True) for name in PEER_NAMES],
)
def any_peer(request: pytest.FixtureRequest, peer_pool: PeerPool) -> Peer:
    """Each peer, plain then TLS: ``peer`` and ``wss_peer`` in one parameter."""
    name: PeerName
    tls: bool
    name, tls = request.param
    return peer_pool.get(name, tls=tls)


@pytest.fixture(scope="session")
def mtls_peer(peer_pool: PeerPool) -> Peer:
    """The websockets peer over TLS, refusing clients without ``client_cert_paths``."""
    return peer_pool.get("websockets", tls=True, require_client_cert=True)


@pytest.fixture(scope="session")
def mtls_url(mtls_peer: Peer) -> str:
    """``wss://localhost:PORT/echo`` on ``mtls_peer``."""
    return mtls_peer.url("/echo")


# ---------------------------------------------------------------------------
# Event loops: every async test of the client layers runs on the default
# asyncio loop and on uvloop. RAPIDWS_TEST_LOOPS=asyncio narrows that down.
# ---------------------------------------------------------------------------

# Folders whose async tests exercise the event loop integration.
_BOTH_LOOPS_DIRS = ("aio", "compat", "conformance", "net")


def _loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    try:
        import uvloop
    except ImportError:  # not on every platform (no Windows build)
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


_LOOPS = _loop_factories()
_SELECTED = os.environ.get("RAPIDWS_TEST_LOOPS")
if _SELECTED:
    _LOOPS = {name: _LOOPS[name] for name in _SELECTED.split(",") if name in _LOOPS}


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    parts = item.path.relative_to(config.rootpath).parts
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in _BOTH_LOOPS_DIRS:
        return _LOOPS
    return {"asyncio": asyncio.new_event_loop}
