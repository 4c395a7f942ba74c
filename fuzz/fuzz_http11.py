"""atheris harness: arbitrary bytes as the server's handshake response.

    pip install atheris
    python fuzz/fuzz_http11.py -max_total_time=600

The parser and validator may only return a result or raise HandshakeError.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from rapidws.errors import HandshakeError
    from rapidws.protocol.handshake import check_response
    from rapidws.protocol.http11 import BodyReader, ResponseParser


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    parser = ResponseParser()
    try:
        while fdp.remaining_bytes():
            response = parser.feed(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 256)))
            if response is not None:
                if response.status == 101:
                    check_response(response, key="dGhlIHNhbXBsZSBub25jZQ==")
                else:
                    reader = BodyReader(response.status, response.headers)
                    reader.feed(parser.remaining + fdp.ConsumeRemainingBytes())
                    reader.feed_eof()
                return
    except HandshakeError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
