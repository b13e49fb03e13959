"""A test never reaches a real model provider: every connection leaves this machine only over loopback.

Installed for the whole session (a pytest plugin named in conftest.py): a socket connecting to any address off
this machine is refused with :class:`OffMachineConnection`, and the test in which it happened fails even when
the code under test caught the error (a provider client that retries and then falls back would otherwise hide
it). PostgreSQL, the OTLP receivers, Phoenix and the UI all listen on loopback, so they are unaffected.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class OffMachineConnection(ConnectionRefusedError):
    """A test tried to open a connection to another machine (a model provider, a hub, anything)."""


refused: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def is_loopback(address: Any) -> bool:
    """Whether a socket address stays on this machine (Unix sockets always do)."""
    if not isinstance(address, tuple):
        return True
    host = str(address[0]).split("%")[0]
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: resolving it is already leaving the machine


def _guard(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address):
        refused.append(f"{address!r}")
        raise OffMachineConnection(f"tests stay on this machine: refused a connection to {address!r}")


def _connect(self: socket.socket, address: Any) -> None:
    _guard(self, address)
    _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _guard(self, address)
    return _real_connect_ex(self, address)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_off_machine_connection() -> Iterator[None]:
    """Fail the test if anything in it tried to leave the machine, caught or not."""
    refused.clear()
    yield
    attempts, refused[:] = list(refused), []
    assert not attempts, f"the test tried to reach another machine (a real provider?): {attempts}"
