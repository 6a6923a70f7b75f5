"""A TCP proxy the fault tests control: it counts every byte and acts at a chosen offset.

The phone dials the proxy's ``endpoint`` instead of the car's (a paired car is its key,
not its address, so the phone accepts it there). ``arm(offset, action)`` makes the proxy
forward exactly ``offset`` more bytes (both directions together, over every connection
since the call) and then run ``action`` from the pump thread that crossed the offset:
``cut`` resets both sockets (a dropped link), or any callable (kill -9 of a process at
that very point of the stream), after which the connections are reset too. Plain
threads, so the test process needs no event loop.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

__all__ = ["CutProxy"]

_CHUNK = 16 * 1024


class CutProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream`` ("HOST:PORT"), counting bytes.

    Args:
        upstream: the car's session endpoint.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._conns: list[tuple[socket.socket, socket.socket]] = []
        self._threads: list[threading.Thread] = []
        self._ended: dict[frozenset[int], int] = {}  # pumps finished per connection
        self._left: int | None = None  # bytes still to forward before acting, if armed
        self._action: Callable[[], None] | None = None
        self.total = 0  # every byte forwarded since start or ``reset_count``
        self.fired = threading.Event()
        self._closed = False
        self._spawn(self._accept)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def arm(self, offset: int, action: Callable[[], None] | None = None) -> None:
        """After ``offset`` more bytes, run ``action`` (default: ``cut``) once."""
        with self._lock:
            self._left, self._action = offset, action or self.cut
            self.fired.clear()
        if offset == 0:
            self._fire()

    def disarm(self) -> None:
        with self._lock:
            self._left = self._action = None

    def reset_count(self) -> None:
        with self._lock:
            self.total = 0

    def cut(self) -> None:
        """Reset every open connection at once (RST, no FIN: a link that vanished)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for pair in conns:
            for sock in pair:
                _reset(sock)

    def close(self) -> None:
        """Stop accepting, cut everything, join the threads."""
        self._closed = True
        self.disarm()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self.cut()
        for t in list(self._threads):
            t.join(5)

    # -- internals ---------------------------------------------------------------------
    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            for sock in (client, server):  # no Nagle: small frames pass at once, as direct
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.append((client, server))
            self._spawn(self._pump, client, server)
            self._spawn(self._pump, server, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(_CHUNK)
            except OSError:
                data = b""
            if not data:
                # An orderly end passes on as one (FIN), so each side closes as it would
                # directly; the second pump to finish closes both sockets.
                _shutdown(dst, socket.SHUT_WR)
                self._pump_done(src, dst)
                return
            data, fire = self._take(data)
            try:
                if data:
                    dst.sendall(data)
            except OSError:
                _reset(src)
                return
            if fire:
                self._fire()
                if not data:
                    return

    def _pump_done(self, src: socket.socket, dst: socket.socket) -> None:
        with self._lock:
            key = frozenset((id(src), id(dst)))
            self._ended[key] = self._ended.get(key, 0) + 1
            last = self._ended[key] == 2
            if last:
                self._conns = [p for p in self._conns if src not in p]
        if last:
            src.close()
            dst.close()

    def _take(self, data: bytes) -> tuple[bytes, bool]:
        """How much of ``data`` may pass, and whether the armed offset is reached."""
        with self._lock:
            if self._left is None:
                self.total += len(data)
                return data, False
            n = min(self._left, len(data))
            self._left -= n
            self.total += n
            return data[:n], self._left == 0

    def _fire(self) -> None:
        with self._lock:
            action, self._left, self._action = self._action, None, None
        if action is not None:
            action()
            # The rest of the chunk that crossed the offset was not forwarded: the stream
            # must not go on past that gap (the peer would see corruption, not this fault).
            self.cut()
            self.fired.set()


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer sees a reset rather than an orderly close.

    ``shutdown(SHUT_RD)`` first wakes the pump blocked in ``recv`` on this socket: a bare
    ``close`` from another thread neither wakes it nor, while it holds the socket, resets.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _shutdown(sock, socket.SHUT_RD)
    try:
        sock.close()
    except OSError:
        pass


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass
