"""Message flags: the libcurl ``CURLWS_*`` bits, so values match curl_cffi."""

from __future__ import annotations

import enum

__all__ = ["WsFlag", "CurlWsFlag"]


class WsFlag(enum.IntFlag):
    """What a received message is, or how to send one.

    The values are libcurl's ``CURLWS_*`` constants, so code that compares
    against curl_cffi's ``CurlWsFlag`` keeps working unchanged.
    """

    TEXT = 1
    BINARY = 2
    #: More fragments of this message follow (streaming receive only).
    CONT = 4
    CLOSE = 8
    PING = 16
    OFFSET = 32
    PONG = 64


#: curl_cffi's name for the same flags.
CurlWsFlag = WsFlag
