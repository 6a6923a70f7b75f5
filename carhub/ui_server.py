"""The dashboard's HTTP server: uvicorn's, without its ten wake-ups a second when idle.

``uvicorn.Server.main_loop`` sleeps 0.1 s at a time to refresh the ``Date`` header once a
second and to notice ``should_exit``: an idle car woke ten times a second for that, most of
its idle CPU (issue 13: 50 cars on one machine). ``QuietServer`` computes the same header
when a response reads it (at most once per second) and sleeps until ``should_exit`` is set,
by the car's ``stop`` or by uvicorn's own signal handler. What it serves is unchanged.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import uvicorn
from uvicorn.server import ServerState

__all__ = ["QuietServer"]


class _FreshDateState(ServerState):
    """``default_headers`` as uvicorn's tick sets them, built when read (once a second)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__()
        self._config = config
        self._second = -1
        self._headers: list[tuple[bytes, bytes]] = []

    @property
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            date = [(b"date", formatdate(now, usegmt=True).encode())]
            self._headers = (date if self._config.date_header else []) + (
                self._config.encoded_headers
            )
        return self._headers

    @default_headers.setter
    def default_headers(self, _value: list[tuple[bytes, bytes]]) -> None:
        """Ignored: the headers are always built from the config and the clock."""


class QuietServer(uvicorn.Server):
    """A ``uvicorn.Server`` whose main loop waits for ``should_exit`` instead of polling it.

    Args:
        config: as for ``uvicorn.Server`` (``limit_max_requests`` and ``callback_notify``,
            which need the tick, are not supported).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit: asyncio.Future[None] | None = None
        self._should_exit = False
        super().__init__(config)
        self.server_state = _FreshDateState(config)

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        waiter = self._exit
        if value and waiter is not None and not waiter.done():
            # Also set from uvicorn's signal handler: hand the wake-up to the loop.
            waiter.get_loop().call_soon_threadsafe(_resolve, waiter)

    async def main_loop(self) -> None:
        """Wait until ``should_exit`` is set (uvicorn's ``serve`` then shuts down)."""
        self._exit = asyncio.get_running_loop().create_future()
        if not self._should_exit:
            await self._exit


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
