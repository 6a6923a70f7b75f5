"""``Phone``: a ``phone-bridge`` state folder; each method is one run of the console script."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carhub.testing.processes import CommandFailed, Processes, Result, console_script, wait_for

if TYPE_CHECKING:
    from carhub.testing.car import Car
    from carhub.testing.radio import Radio

__all__ = ["Contacts", "Pairing", "Phone", "PhoneRun"]

# A vCard file, or the texts of vCards (each one BEGIN:VCARD ... END:VCARD).
Contacts = str | Path | Sequence[str]
TRANSPORTS = ("lan", "ble", "auto")
_CODE = re.compile(r"Pairing code: (\d{3}) (\d{3})")


class Phone:
    """A phone: ``phone-bridge --state-dir DIR ...`` with its own key and paired cars.

    ``carhub_phone(...)`` makes these; see docs/testing.md.

    Args:
        processes: where its runs are tracked (and stopped at the end of the test).
        state_dir: its ``--state-dir``; contacts files and logs go beside it.
        name: the phone's ``--name``, as cars list it.
        contacts: the phone book ``sync`` and ``run`` send by default.
        media: a folder of audio files or an M3U playlist (``--media``).
        transport: how it reaches cars: ``"lan"`` (dials the car's ``endpoint``),
            ``"ble"`` (by name over the emulated radio) or ``"auto"`` (by name).
        radio: the emulated radio for BLE; default: the car's.

    Raises:
        ValueError: an unknown transport.
    """

    def __init__(
        self,
        processes: Processes,
        state_dir: Path,
        name: str = "Phone",
        *,
        contacts: Contacts | None = None,
        media: str | Path | None = None,
        transport: str = "lan",
        radio: Radio | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
        self._processes = processes
        self.state_dir = state_dir
        self.name = name
        self.media = media
        self.transport = transport
        self.radio = radio
        self._files = 0
        self.contacts = None if contacts is None else self.contacts_file(contacts)
        self._id: str | None = None

    @property
    def id(self) -> str:
        """This phone's device id: the ``phone_id`` the car lists it under."""
        if self._id is None:
            self._id = str(self.status()["phone_id"])
        return self._id

    def cli(self, *args: str, input: str | None = None, timeout: float = 120.0) -> Result:
        """Run ``phone-bridge --state-dir DIR ARGS...`` to the end; any exit code is returned."""
        return self._processes.run(self._args(*args), input=input, timeout=timeout)

    def status(self) -> dict[str, Any]:
        """``phone-bridge status --json``: ``{phone_id, fingerprint, cars}``."""
        return dict(_checked(self._args("status", "--json"), self.cli("status", "--json")).json)

    def contacts_file(self, contacts: Contacts) -> Path:
        """``contacts`` as a vCard file: a path is used as is, texts are written to one."""
        if isinstance(contacts, str | Path):
            return Path(contacts)
        self._files += 1
        path = self.state_dir.with_name(f"{self.state_dir.name}-contacts-{self._files}.vcf")
        path.write_text("".join(c if c.endswith("\n") else c + "\r\n" for c in contacts))
        return path

    def target(self, car: Car) -> list[str]:
        """The ``CAR`` argument and transport options that reach ``car`` this phone's way.

        Raises:
            ValueError: BLE without a radio (neither this phone's nor the car's).
        """
        if self.transport == "lan":
            return [car.endpoint, "--transport", "lan"]
        radio = self.radio or car.radio
        if self.transport == "ble" and radio is None:
            raise ValueError("a BLE phone needs a radio: carhub_phone(radio=...) or the car's")
        args = [car.name, "--transport", self.transport, "--mdns-interface", "127.0.0.1"]
        return args + (["--radio", radio.transport] if radio is not None else [])

    def pair(self, car: Car, auto_confirm: bool = True, timeout: float = 60.0) -> dict[str, Any]:
        """Pair with ``car`` and return ``pair --json``'s object.

        On the car the code is accepted by the car itself (``carhub_car(auto_confirm=True)``)
        or else by this call, over REST, as a user at the dashboard would. On the phone,
        ``auto_confirm=True`` is ``--auto-confirm``; False answers the phone's prompt yes
        only if its code is the one the car shows (the two screens compared).

        Raises:
            CommandFailed: pairing failed (its exit code, e.g. 4, is in ``.result``).
        """
        pairing = self.begin_pair(car, auto_confirm=auto_confirm)
        if not auto_confirm:
            pairing.answer(pairing.code == pairing.car_request(timeout)["code"])
        if not car.auto_confirm:
            car.accept(pairing.car_request(timeout)["code"], timeout)
        r = pairing.wait(timeout)
        return dict(_checked(pairing.args, r).json)

    def begin_pair(self, car: Car, auto_confirm: bool = False) -> Pairing:
        """Start ``phone-bridge pair`` and return at once, for a test that decides itself."""
        args = self._args("pair", *self.target(car), "--name", self.name, "--json")
        args += ["--auto-confirm"] if auto_confirm else []
        return Pairing(self, car, args)

    def sync(
        self, car: Car, contacts: Contacts | None = None, *args: str, check: bool = True,
        timeout: float = 120.0,
    ) -> dict[str, Any]:  # fmt: skip
        """``phone-bridge sync CAR --contacts FILE --json``; returns its JSON object.

        Args:
            car: the car.
            contacts: this time's phone book (default: the phone's own).
            args: more ``sync`` options, e.g. ``"--allow-deletes"``.
            check: raise unless the exit code is 0 or 6 (synced, some cards skipped);
                False returns the object whatever the code (``{"ok": false, "exit_code"}``).
            timeout: seconds before the sync is killed.

        Raises:
            CommandFailed: the sync failed (and ``check``).
            ValueError: no contacts, here or at ``carhub_phone``.
        """
        media = ["--media", str(self.media)] if self.media is not None else []
        argv = self._args("sync", *self.target(car), *self._book(contacts), *media, "--json", *args)
        r = self._processes.run(argv, timeout=timeout)
        return dict((_checked(argv, r, ok=(0, 6)) if check else r).json)

    @contextmanager
    def run(
        self, car: Car, *args: str, contacts: Contacts | None = None,
        media: str | Path | None = None, wait: str | None = "connected", timeout: float = 60.0,
    ) -> Iterator[PhoneRun]:  # fmt: skip
        """``phone-bridge run CAR --json`` for the ``with`` block; stopped when it ends.

        Args:
            car: the car.
            args: more ``run`` options (e.g. ``"--auto-confirm"`` to pair on the way).
            contacts: the phone book (default: the phone's own; none: no contacts).
            media: the player's media (default: the phone's own).
            wait: the event to wait for before the block starts (None: do not wait).
            timeout: seconds to wait for it.
        """
        book = self._book(contacts, required=False)
        media = media if media is not None else self.media
        extra = ["--media", str(media)] if media is not None else []
        argv = self._args("run", *self.target(car), *book, *extra, "--json", *args)
        session = PhoneRun(self.state_dir, self._runs())
        with session.events_path.open("a") as out, session.log_path.open("a") as err:
            session.proc = self._processes.spawn(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        try:
            if wait is not None:
                session.wait_event(wait, timeout=timeout)
            yield session
        finally:
            self._processes.stop(session.proc)

    def _runs(self) -> int:
        self._files += 1
        return self._files

    def _book(self, contacts: Contacts | None, required: bool = True) -> list[str]:
        path = self.contacts if contacts is None else self.contacts_file(contacts)
        if path is None and required:
            raise ValueError("no contacts: give carhub_phone(contacts=...) or sync(car, ...)")
        return (["--contacts", str(path)] if path is not None else []) + ["--name", self.name]

    def _args(self, *args: str) -> list[str]:
        return [console_script("phone-bridge"), "--state-dir", str(self.state_dir), *args]


class Pairing:
    """A ``phone-bridge pair`` under way (``Phone.begin_pair``)."""

    def __init__(self, phone: Phone, car: Car, args: list[str]) -> None:
        self.phone, self.car, self.args = phone, car, args
        self.proc = phone._processes.spawn(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=_drain, args=(stream, sink), daemon=True)
            for stream, sink in ((self.proc.stdout, self._out), (self.proc.stderr, self._err))
        ]
        for reader in self._readers:
            reader.start()

    @property
    def code(self) -> str:
        """The six digits the phone shows (waits until it does, up to 30 s)."""

        def shown() -> str:
            found = _CODE.search("".join(self._err))
            if found is None and self.proc.poll() is not None:
                raise RuntimeError(f"phone-bridge pair exited {self.proc.returncode}")
            return found.group(1) + found.group(2) if found else ""

        return wait_for(shown, 30, "the phone to show a pairing code")

    def car_request(self, timeout: float = 30.0) -> dict[str, Any]:
        """The car's pending request from this phone (``/api/pairing/requests``)."""
        pid = self.phone.id

        def pending() -> dict[str, Any] | None:
            return next((r for r in self.car.pairing_requests() if r["phone_id"] == pid), None)

        return wait_for(pending, timeout, "the car to show this phone's pairing request")

    def answer(self, yes: bool) -> None:
        """Answer the phone's "Does the car show the same code? [y/N]"."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("y\n" if yes else "n\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float = 60.0) -> Result:
        """Wait for the pairing to end; return its exit code and output (killed on timeout)."""
        try:
            self.proc.wait(timeout)
            for reader in self._readers:  # the pipes' last bytes
                reader.join(5)
        except subprocess.TimeoutExpired:
            err = "".join(self._err)[-2000:]
            raise AssertionError(f"pairing did not end within {timeout} s: {err}") from None
        finally:
            self.phone._processes.stop(self.proc)
        return Result(self.proc.returncode, "".join(self._out), "".join(self._err))


class PhoneRun:
    """A ``phone-bridge run --json`` under way: its events (one JSON object a line)."""

    def __init__(self, state_dir: Path, index: int) -> None:
        base = f"{state_dir.name}-run-{index}"
        self.events_path = state_dir.with_name(base + "-events.jsonl")
        self.log_path = state_dir.with_name(base + ".log")
        self.proc: subprocess.Popen[str] | None = None

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every event printed so far (of ``kind`` if given), oldest first."""
        text = self.events_path.read_text() if self.events_path.exists() else ""
        out = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [e for e in out if kind is None or e.get("event") == kind]

    def wait_event(self, kind: str, count: int = 1, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until ``count`` events of ``kind`` were printed; return the last.

        Raises:
            RuntimeError: the phone exited first (its log is in the message).
            AssertionError: not within ``timeout`` seconds.
        """

        def seen() -> list[dict[str, Any]]:
            found = self.events(kind)
            if len(found) < count and self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"phone-bridge run exited {self.proc.returncode}: {self.log()}")
            return found if len(found) >= count else []

        return wait_for(seen, timeout, f"{count} {kind!r} event(s) of phone-bridge run")[-1]

    def log(self) -> str:
        """What ``phone-bridge run`` logged so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""


def _checked(args: list[str], r: Result, ok: tuple[int, ...] = (0,)) -> Result:
    if r.code not in ok:
        raise CommandFailed(args, r)
    return r


def _drain(stream: Any, sink: list[str]) -> None:
    """Read a pipe to its end (a thread), so the process never blocks on a full pipe."""
    try:
        for chunk in iter(lambda: stream.read(1), ""):
            sink.append(chunk)
    except (ValueError, OSError):  # closed under us: the process was stopped
        pass
