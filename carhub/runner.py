"""Start and stop a whole car: store, engine, session endpoint, dashboard, mDNS, BLE."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from carhub.api import LOOPBACK_HOSTS, create_app
from carhub.engine import CarConfig, Engine
from carhub.store import Store
from carhub.ui_server import QuietServer
from protocol.dnssd import TxtRecord
from protocol.messages import PROTOCOL_VERSION
from shell.gate import IntakeGate
from shell.keys import load_or_create_identity
from shell.radio import is_emulated
from shell.websocket import start_websocket_server

if TYPE_CHECKING:
    from carhub.mdns import CarAdvertiser

__all__ = ["CarRunner", "RunOptions", "parse_hostport"]

log = logging.getLogger("carhub")


def parse_hostport(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """Parse ``HOST:PORT`` (or ``:PORT``/``PORT``).

    Raises:
        ValueError: not a valid host:port.
    """
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host or default_host, int(port)


@dataclass
class RunOptions:
    listen: str = "0.0.0.0:7800"
    ui: str = "127.0.0.1:8080"
    mdns_interface: str | None = None
    mdns: bool = True
    hci: str | None = None
    btsnoop: str | None = None
    # With BLE on, the controller is dual-mode too: phones give their phone book over PBAP.
    classic: bool = True


class CarRunner:
    """Owns the running car's parts; ``start`` then ``stop`` (or ``run_forever``)."""

    def __init__(self, config: CarConfig, options: RunOptions) -> None:
        self.config = config
        self.options = options
        # Keys, contacts and their photos: readable by this user only. The umask also covers
        # the files SQLite creates later (-wal, -shm).
        os.umask(0o077)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            config.state_dir.chmod(0o700)
        except OSError as exc:  # a mounted volume we do not own: say so, carry on
            log.warning("cannot make %s private: %s", config.state_dir, exc.strerror)
        identity = load_or_create_identity(config.state_dir / "car.key")
        self.store = Store(config.state_dir / "carhub.sqlite3")
        self.engine = Engine(config, identity, store=self.store)
        # One count of unauthenticated connections for the whole car, across transports.
        self.gate = IntakeGate()
        self.ws_port = 0
        self.ui_port = 0
        self._ws_server: Any = None
        self._uvicorn: QuietServer | None = None
        self._uvicorn_task: asyncio.Task[None] | None = None
        self._mdns: CarAdvertiser | None = None
        self._ble: Any = None
        self._window_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bring every part up; raises OSError if a port is taken."""
        host, port = parse_hostport(self.options.listen, "0.0.0.0")
        self._ws_server = await start_websocket_server(
            host, port, self.engine.serve_link, gate=self.gate
        )
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        advertised = self._advertised_address(host)
        self.config.lan_endpoint = f"{advertised}:{self.ws_port}"
        log.info("session endpoint ws://%s:%d", host, self.ws_port)
        await self._start_ui()
        if self.options.hci:
            await self._start_ble()
        if self.options.mdns:
            await self._start_mdns(advertised)
        # Close a timed-out pairing window even when nobody asks (mDNS/BLE re-announce).
        self._window_task = asyncio.create_task(self._watch_pairing_window())
        log.info("car %r (%s) is up", self.config.name, self.engine.identity.device_id)

    async def _watch_pairing_window(self) -> None:
        """Once a second while the window is open, read it (which closes it when expired).

        A closed window has no deadline, nor a QR code that could expire (closing drops
        it), and it opens only through the engine, which tells its listeners: so an idle
        car with its window closed never wakes for this.
        """
        opened = asyncio.Event()
        self.engine.on_pairing_change(lambda open_: opened.set() if open_ else None)
        while True:
            if not self.engine.pairing_open:  # the property closes an expired window
                opened.clear()
                await opened.wait()
            await asyncio.sleep(1.0)

    async def _start_ui(self) -> None:
        host, port = parse_hostport(self.options.ui)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))  # bind first so a busy port fails start(), not a task
        self.ui_port = sock.getsockname()[1]
        # Bound to loopback (the default): only loopback Host headers are served, which
        # defeats DNS rebinding. Bound elsewhere on purpose: any Host, same-origin still holds.
        allowed = (
            LOOPBACK_HOSTS
            if host in ("127.0.0.1", "localhost", "::1")
            else None
            if host in ("0.0.0.0", "::", "")
            else (*LOOPBACK_HOSTS, host)
        )
        # No proxy sits in front of the dashboard: never let a client's X-Forwarded-* headers
        # rewrite the scheme or address the origin guard and the logs see.
        config = uvicorn.Config(
            create_app(self.engine, allowed),
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,
        )
        self._uvicorn = QuietServer(config)
        self._uvicorn_task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        while not self._uvicorn.started:
            if self._uvicorn_task.done():
                self._uvicorn_task.result()
            await asyncio.sleep(0.01)
        log.info("dashboard http://%s:%d/", host, self.ui_port)

    async def _start_mdns(self, address: str) -> None:
        from carhub.mdns import CarAdvertiser  # zeroconf: ~3 MB a car with --no-mdns saves

        self._mdns = CarAdvertiser(
            interface=self.options.mdns_interface,
            address=address,
            port=self.ws_port,
            device_id=self.engine.identity.device_id,
        )
        await self._mdns.start(self._txt())

        def changed(_open: bool) -> None:
            if self._mdns is not None:
                self.engine.spawn(self._mdns.update(self._txt()))

        self.engine.on_pairing_change(changed)

    async def _start_ble(self) -> None:
        from carhub.ble import BleCarServer
        from carhub.ble.bonds import open_keystore
        from carhub.pbap import ClassicCar
        from radio.bdaddr import derived_address

        # One key store for LE and Classic keys (STATE/bonds.json, 0600): one physical
        # phone bonded both ways is one entry in it, as it is one phone on the dashboard.
        hci_spec = self.options.hci or ""
        classic = (
            ClassicCar(
                self.engine,
                open_keystore(self.config.state_dir),
                # The radio gives a new BD_ADDR per connection: keep one, made from the id.
                stable_address=derived_address(self.engine.identity.device_id)
                if is_emulated(hci_spec)
                else None,
            )
            if self.options.classic
            else None
        )
        self._ble = BleCarServer(
            self.options.hci or "",
            name=self.config.name,
            device_id=self.engine.identity.device_id,
            info={
                "id": self.engine.identity.device_id,
                "name": self.config.name,
                "model": self.config.model,
                "version": PROTOCOL_VERSION,
                "lan": [self.config.lan_endpoint] if self.config.lan_endpoint else [],
            },
            on_link=self.engine.serve_link,
            gate=self.gate,
            btsnoop=Path(self.options.btsnoop) if self.options.btsnoop else None,
            # iPhones with no app: the car is their AMS/ANCS client, bonds kept in the state dir.
            apple=self.engine,
            state_dir=self.config.state_dir,
            classic=classic,
        )
        await self._ble.start()
        self.engine.apple_enabled = True
        self._ble.set_pairing_open(self.engine.pairing_open)
        self.engine.ble_address = str(self._ble.address)
        self.engine.on_pairing_change(self._ble.set_pairing_open)
        if classic is not None:
            classic.set_discoverable(self.engine.pairing_open)
            self.engine.on_pairing_change(classic.set_discoverable)
        log.info("BLE advertising as %s via %s", self.engine.ble_address, self.options.hci)

    def _txt(self) -> TxtRecord:
        return TxtRecord(
            id=self.engine.identity.device_id,
            name=self.config.name,
            model=self.config.model,
            pairing_open=self.engine.pairing_open,
            ble_address=self.engine.ble_address or "",
        )

    def _advertised_address(self, host: str) -> str:
        """The address phones should dial: the bind address, or the mDNS interface."""
        if self.options.mdns_interface:
            return self.options.mdns_interface
        if host not in ("0.0.0.0", "", "::"):
            return host
        with suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
            return str(s.getsockname()[0])
        return "127.0.0.1"

    async def stop(self) -> None:
        """Unregister mDNS, close phones, stop servers, close the store."""
        if self._window_task is not None:
            self._window_task.cancel()
        if self._mdns is not None:
            with suppress(Exception):
                await self._mdns.stop()
        await self.engine.shutdown()
        if self._ble is not None:
            with suppress(Exception):
                await self._ble.stop()
        if self._ws_server is not None:
            self._ws_server.close()
            with suppress(Exception):
                await asyncio.wait_for(self._ws_server.wait_closed(), 2)
        if self._uvicorn is not None and self._uvicorn_task is not None:
            self._uvicorn.should_exit = True
            with suppress(Exception):
                await asyncio.wait_for(self._uvicorn_task, 3)
        self.store.close()
        log.info("car stopped")

    async def run_forever(self, on_ready: Callable[[], None] = lambda: None) -> None:
        """Start, call ``on_ready``, run until SIGINT or SIGTERM, then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        on_ready()
        try:
            await stop.wait()
        finally:
            await self.stop()
