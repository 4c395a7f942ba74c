"""atheris harness: arbitrary bytes into the client Connection, in arbitrary chunks.

    pip install atheris
    python fuzz/fuzz_parser.py -max_total_time=600

Anything but a clean parse or a clean failure (the Connection's own close
code) is a crash atheris reports.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from rapidws.protocol.connection import Connection, Side


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    conn = Connection(Side.CLIENT, max_message_size=1 << 20)
    while fdp.remaining_bytes():
        conn.receive_data(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 512)))
    if conn.failure is not None:
        assert conn.failure.close_code in (1002, 1007, 1009), conn.failure


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
