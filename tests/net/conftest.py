"""Real proxies for tests/net, started on first use and stopped at the end of the session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.peers.certs import TLSFiles
from tests.peers.launcher import PeerError
from tests.peers.proxies import (
    PROXY_CREDENTIALS,
    SOCKS4_USER,
    ProxyProcess,
    start_pproxy,
    start_tinyproxy,
)

# Tinyproxy's config grammar takes only word characters and a few more here.
TINYPROXY_CREDENTIALS = ("tinyuser", "tiny-secret_9")


class ProxyPool:
    """One proxy process per name, started by the first test that needs it."""

    def __init__(self, tls: TLSFiles, log_dir: Path) -> None:
        user, password = PROXY_CREDENTIALS
        tls_pair = (str(tls.server_cert), str(tls.server_key))
        self._recipes: dict[str, Callable[[], ProxyProcess]] = {
            "http": lambda: start_pproxy("http", log_dir=log_dir, auth=f"{user}:{password}"),
            "https": lambda: start_pproxy(
                "http+ssl", log_dir=log_dir, auth=f"{user}:{password}", tls=tls_pair
            ),
            "socks5": lambda: start_pproxy("socks5", log_dir=log_dir, auth=f"{user}:{password}"),
            "socks4": lambda: start_pproxy("socks4", log_dir=log_dir, auth=SOCKS4_USER),
            "http-blocking": lambda: start_pproxy("http", log_dir=log_dir, block=".*"),
            "tinyproxy": lambda: start_tinyproxy(log_dir=log_dir, basic_auth=TINYPROXY_CREDENTIALS),
            "tinyproxy-refusing": lambda: start_tinyproxy(log_dir=log_dir, connect_ports=(1,)),
        }
        self._running: dict[str, ProxyProcess] = {}
        self._failed: dict[str, PeerError] = {}

    def get(self, name: str) -> ProxyProcess:
        if name in self._failed:
            raise PeerError(str(self._failed[name]))
        if name not in self._running:
            try:
                self._running[name] = self._recipes[name]()
            except PeerError as exc:
                self._failed[name] = exc
                raise
        return self._running[name]

    def close(self) -> None:
        for process in self._running.values():
            process.stop()
        self._running.clear()


@pytest.fixture(scope="session")
def proxy_pool(
    tls_files: TLSFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyPool]:
    pool = ProxyPool(tls_files, tmp_path_factory.mktemp("proxy-logs"))
    try:
        yield pool
    finally:
        pool.close()
