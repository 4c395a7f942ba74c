"""Certificates for the TLS peers, issued by a throwaway ``trustme`` CA.

:func:`write_tls_files` issues one server certificate valid for ``localhost`` and
``127.0.0.1`` and one client certificate for ``client@example``, and writes every
PEM the peers and the tests need into a directory. The Node server reads the same
files as the Python servers, so everything lives on disk rather than in memory.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_IDENTITIES = ("localhost", "127.0.0.1")
CLIENT_IDENTITY = "client@example"


@dataclass(frozen=True)
class TLSFiles:
    """Paths of the PEM files written by :func:`write_tls_files`."""

    ca: Path
    """CA certificate: the bundle clients verify the servers with."""
    server_cert: Path
    """Server certificate chain (leaf first)."""
    server_key: Path
    """Server private key."""
    client_cert: Path
    """Client certificate chain, for servers that require one."""
    client_key: Path
    """Client private key."""

    def client_ssl_context(self, *, with_client_cert: bool = False) -> ssl.SSLContext:
        """A client context that trusts the test CA, optionally presenting the client cert."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if with_client_cert:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


def write_tls_files(directory: Path) -> TLSFiles:
    """Create a CA, issue the server and client certificates, write them to ``directory``."""
    ca = trustme.CA()
    server = ca.issue_cert(*SERVER_IDENTITIES)
    client = ca.issue_cert(CLIENT_IDENTITY)
    files = TLSFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    server.private_key_pem.write_to_path(str(files.server_key))
    client.private_key_pem.write_to_path(str(files.client_key))
    # The chain files get the leaf, then any intermediates.
    for blob in server.cert_chain_pems:
        blob.write_to_path(str(files.server_cert), append=True)
    for blob in client.cert_chain_pems:
        blob.write_to_path(str(files.client_cert), append=True)
    return files
