"""The one free-port helper of the suite (and of bench/run.py)."""

from __future__ import annotations

import socket

__all__ = ["unused_port"]


def unused_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nobody listens on right now (connecting is refused).

    The OS picks it and the socket is closed again, so another process could take it
    before the caller binds it: good enough for a test's own servers on loopback.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
