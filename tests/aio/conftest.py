"""Fixtures for the client tests."""

from __future__ import annotations

from tests.aio.raw import raw_server as raw_server  # the scripted raw server fixture
