"""``Car``: one ``carhub run --json`` process, driven through its ready line and REST API."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from carhub.testing.processes import Daemon, Processes, console_script, wait_for

if TYPE_CHECKING:
    from carhub.testing.radio import Radio

__all__ = ["Car", "EventStream", "cli_options"]


def cli_options(options: dict[str, Any]) -> list[str]:
    """Keyword options as command-line options: ``pairing_window=30`` is
    ``--pairing-window 30``, ``no_mdns=True`` is ``--no-mdns``; False and None are left out.
    """
    args: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not False and value is not None:
            args += [flag, str(value)]
    return args


class Car(Daemon):
    """A running ``carhub run`` on free loopback ports, in its own state folder.

    ``carhub_car(...)`` makes these; see docs/testing.md. The REST methods raise
    ``httpx.HTTPStatusError`` for a refusal (its ``response`` has the status and detail).

    Args:
        processes: where the process is tracked (and stopped at the end of the test).
        state_dir: the car's ``--state-dir`` (its key, store); its logs go beside it.
        name: the car's ``--name``.
        radio: put the car's BLE side on this emulated radio (``--hci``).
        lan: announce the car over mDNS on the loopback; False: ``--no-mdns`` (the session
            endpoint still listens on 127.0.0.1, ``carhub run`` always serves it).
        pairing_open: start with the pairing window open.
        auto_confirm: the car accepts every pairing code by itself (``--auto-confirm``).
        options: any other ``carhub run`` option, by its name with ``_`` for ``-``.
    """

    def __init__(
        self,
        processes: Processes,
        state_dir: Path,
        name: str = "Car",
        *,
        radio: Radio | None = None,
        lan: bool = True,
        pairing_open: bool = True,
        auto_confirm: bool = True,
        **options: Any,
    ) -> None:
        self._processes = processes
        self.state_dir = state_dir
        self.name = name
        self.radio = radio
        self.lan = lan
        self.auto_confirm = auto_confirm
        self.options: dict[str, Any] = {"listen": "127.0.0.1:0", "ui": "127.0.0.1:0"}
        self.options["mdns_interface" if lan else "no_mdns"] = "127.0.0.1" if lan else True
        self.options["pairing"] = "open" if pairing_open else "closed"
        self.options["auto_confirm"] = auto_confirm
        if radio is not None:
            self.options["hci"] = radio.transport
        self.options.update(options)
        self.proc: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}

    # -- the process --------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        """The car's stderr (its log), appended to across restarts."""
        return self.state_dir.with_name(self.state_dir.name + ".log")

    def start(self, timeout: float = 30.0) -> Car:
        """Start ``carhub run --json`` and wait for its ``ready`` line.

        Raises:
            RuntimeError: the car exited before it was ready (its log is in the message).
            AssertionError: no ready line within ``timeout`` seconds.
        """
        out_path = self.state_dir.with_name(self.state_dir.name + ".out")
        args = [console_script("carhub"), "run", "--name", self.name, "--state-dir",
                str(self.state_dir), "--json", *cli_options(self.options)]  # fmt: skip
        # stdout to a file, not a pipe: nobody has to keep reading it after the ready line.
        with out_path.open("w") as out, self.log_path.open("a") as err:
            proc = self._processes.spawn(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        self.proc = proc

        def ready_line() -> str:
            text = out_path.read_text()
            if text.endswith("\n"):
                return text.splitlines()[0]
            if proc.poll() is not None:
                raise RuntimeError(f"carhub run exited {proc.returncode}: {self.log()}")
            return ""

        self.ready = json.loads(wait_for(ready_line, timeout, f"car {self.name!r} to be ready"))
        # A restart comes back on the same ports, so phones and dashboards find it again.
        self.options["listen"] = self.endpoint
        self.options["ui"] = self.dashboard.removeprefix("http://").rstrip("/")
        return self

    def restart(self, timeout: float = 30.0, *, same_ports: bool = True) -> Car:
        """Stop the car and start it again with the same state (key, phones, contacts).

        Args:
            timeout: seconds to wait for the ready line.
            same_ports: come back on the same session and dashboard ports; False: on new
                free ones (a car that moved).
        """
        self.stop()
        if not same_ports:
            self.options.update(listen="127.0.0.1:0", ui="127.0.0.1:0")
        return self.start(timeout)

    # -- the ready line -----------------------------------------------------------------
    @property
    def id(self) -> str:
        """The car's device id (the ready line's ``id``)."""
        return str(self.ready["id"])

    @property
    def dashboard(self) -> str:
        """The dashboard's URL, ``http://127.0.0.1:PORT/`` (the ready line's ``dashboard``)."""
        return str(self.ready["dashboard"])

    @property
    def endpoint(self) -> str:
        """The session endpoint ``HOST:PORT`` phones dial (the ready line's ``endpoint``)."""
        return str(self.ready["endpoint"])

    # -- the REST API -------------------------------------------------------------------
    def get(self, path: str, **kw: Any) -> Any:
        """``GET`` a dashboard API path (``/api/status``) and return its JSON."""
        r = httpx.get(self.dashboard.rstrip("/") + path, timeout=10, **kw)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        """``POST`` to a dashboard API path (with ``body`` as JSON) and return its JSON."""
        r = httpx.post(self.dashboard.rstrip("/") + path, json=body, timeout=10, **kw)
        r.raise_for_status()
        return r.json()

    def status(self) -> dict[str, Any]:
        """``GET /api/status``."""
        return dict(self.get("/api/status"))

    def pairing_requests(self) -> list[dict[str, Any]]:
        """``GET /api/pairing/requests``: the pending requests, each with its ``code``."""
        return list(self.get("/api/pairing/requests"))

    def accept(self, code: str, timeout: float = 10.0) -> dict[str, Any]:
        """Accept the pairing request showing ``code`` (spaces ignored), as a user would.

        Waits up to ``timeout`` seconds for such a request to appear; returns the request.

        Raises:
            AssertionError: no pending request shows that code.
        """
        return self._decide(code, "accept", timeout)

    def reject(self, code: str, timeout: float = 10.0) -> dict[str, Any]:
        """Reject the pairing request showing ``code``; see ``accept``."""
        return self._decide(code, "reject", timeout)

    def _decide(self, code: str, verb: str, timeout: float) -> dict[str, Any]:
        want = code.replace(" ", "")

        def showing() -> dict[str, Any] | None:
            return next((r for r in self.pairing_requests() if r["code"] == want), None)

        request = wait_for(showing, timeout, f"a pairing request showing {code!r}")
        self.post(f"/api/pairing/requests/{request['id']}/{verb}")
        return request

    def phones(self) -> list[dict[str, Any]]:
        """``GET /api/phones``: the paired phones."""
        return list(self.get("/api/phones"))

    def phone(self, phone_id: str) -> dict[str, Any] | None:
        """The ``/api/phones`` row of ``phone_id``, or None if the car does not list it."""
        return next((p for p in self.phones() if p["id"] == phone_id), None)

    def contacts(self, phone_id: str, q: str = "") -> list[dict[str, Any]]:
        """Every contact item the car holds for the phone (all pages), sorted as the car
        sorts them: ``[{uid, name, phones, emails, org}]``."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(
                f"/api/phones/{phone_id}/contacts",
                params={"q": q, "limit": 1000, "offset": len(items)},
            )
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                return items

    def media(self) -> dict[str, Any]:
        """``GET /api/media``: now playing."""
        return dict(self.get("/api/media"))

    def command(self, action: str, **fields: Any) -> dict[str, Any]:
        """``POST /api/media/command`` ``{action, **fields}`` (e.g. ``position_ms=``)."""
        return dict(self.post("/api/media/command", {"action": action, **fields}))

    def events(self, timeout: float = 30.0) -> EventStream:
        """The car's live ``/api/events``: an async iterator of ``{type, data}`` objects.

        Use it as ``async with car.events() as events: async for event in events: ...``,
        so the WebSocket is closed when the block ends. Each wait for the next event
        fails after ``timeout`` seconds.
        """
        url = "ws://" + self.dashboard.removeprefix("http://").rstrip("/") + "/api/events"
        return EventStream(url, timeout)


class EventStream:
    """The WebSocket ``/api/events`` of a car: a snapshot of every kind, then each change.

    An async iterator (it connects on first use) and an async context manager (which
    closes it). The iteration ends when the car closes the socket (e.g. it stopped).
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._ws: ClientConnection | None = None

    async def connect(self) -> EventStream:
        """Open the WebSocket (done by the first ``__anext__`` if not before)."""
        if self._ws is None:
            self._ws = await asyncio.wait_for(connect(self.url), self.timeout)
        return self

    async def aclose(self) -> None:
        """Close the WebSocket."""
        if self._ws is not None:
            ws, self._ws = self._ws, None
            await asyncio.wait_for(ws.close(), self.timeout)

    async def __aenter__(self) -> EventStream:
        return await self.connect()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        ws = (await self.connect())._ws
        assert ws is not None
        try:
            raw = await asyncio.wait_for(ws.recv(), self.timeout)
        except ConnectionClosed:
            raise StopAsyncIteration from None
        except TimeoutError:
            raise AssertionError(f"no event on {self.url} for {self.timeout} s") from None
        return dict(json.loads(raw))

    async def wait_for(self, type: str, match: Any = None, timeout: float = 30.0) -> Any:
        """The ``data`` of the next event of ``type`` for which ``match(data)`` is true.

        Raises:
            AssertionError: none within ``timeout`` seconds.
        """

        async def first() -> Any:
            async for event in self:
                if event["type"] == type and (match is None or match(event["data"])):
                    return event["data"]
            raise AssertionError(f"the car closed {self.url} before a {type!r} event")

        try:
            return await asyncio.wait_for(first(), timeout)
        except TimeoutError:
            raise AssertionError(f"no matching {type!r} event within {timeout} s") from None
