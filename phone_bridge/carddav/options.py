"""The ``--carddav*`` options of ``sync`` and ``run``, and turning them into a contact source.

This module imports only typer and the standard library at its top, so the commands can
declare the options without paying for httpx or defusedxml; those are imported when a
pull happens. The password never comes from the command line: from
``$CARHUB_CARDDAV_PASSWORD``, or from ``--carddav-password-file``, which must be mode
0600 (as ``phone.key`` must).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from phone_bridge.errors import BadInput, BridgeError

if TYPE_CHECKING:
    from phone_bridge.carddav.feed import CardDavConfig, CardDavFeed
    from phone_bridge.engine import Contacts

__all__ = [
    "PASSWORD_ENV",
    "CardDav",
    "CardDavCa",
    "CardDavInterval",
    "CardDavPasswordFile",
    "CardDavUser",
    "ContactSource",
    "carddav_config",
]

log = logging.getLogger("phone_bridge.carddav")
PASSWORD_ENV = "CARHUB_CARDDAV_PASSWORD"
# A password (or app password) is tens of bytes: a bigger file is the wrong file.
_MAX_PASSWORD_FILE = 4096

CardDav = Annotated[
    str | None,
    typer.Option(
        "--carddav",
        help="Contacts from a CardDAV address book (its URL, or a server root to discover it "
        "from: iCloud, Google, Nextcloud, see the README) instead of --contacts.",
    ),
]
CardDavUser = Annotated[
    str | None,
    typer.Option(
        "--carddav-user",
        help=f"The CardDAV user. The password comes from ${PASSWORD_ENV} or "
        "--carddav-password-file, never from the command line.",
    ),
]
CardDavPasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--carddav-password-file",
        help="A file holding the CardDAV (app) password; refused unless mode 0600.",
    ),
]
CardDavCa = Annotated[
    Path | None,
    typer.Option(
        "--carddav-ca",
        help="A CA certificate (PEM) to trust for the CardDAV server (e.g. self-signed).",
    ),
]
CardDavInterval = Annotated[
    float,
    typer.Option("--carddav-interval", help="Seconds between CardDAV pulls in 'run'."),
]


@dataclass(frozen=True)
class ContactSource:
    """The contact source options of ``sync`` and ``run``: a file, or a CardDAV book."""

    contacts: Path | None
    carddav: str | None
    user: str | None = None
    password_file: Path | None = None
    ca: Path | None = None
    interval: float = 30.0

    def read(
        self, state_root: Path, *, allow_deletes: bool, as_json: bool
    ) -> tuple[CardDavFeed | None, Contacts]:
        """Read the file, or pull the book once: before the car is contacted.

        Returns:
            The CardDAV source (None for a file) and the contacts.

        Raises:
            typer.Exit: neither or both sources, or whatever ``read_contacts`` or
                ``_pull`` refuse (one line, the exit code, nothing sent).
        """
        from phone_bridge.cli.app import fail
        from phone_bridge.cli.inputs import read_contacts

        if self.carddav is not None and self.contacts is None:
            return self._pull(self.carddav, state_root, allow_deletes, as_json)
        if self.contacts is not None and self.carddav is None:
            return None, read_contacts(
                self.contacts, as_json, allow_empty=allow_deletes, state_dir=state_root
            )
        msg = "give exactly one contact source: --contacts FILE or --carddav URL"
        raise fail(BadInput(msg), as_json)

    def _pull(
        self, url: str, state_root: Path, allow_deletes: bool, as_json: bool
    ) -> tuple[CardDavFeed, Contacts]:
        """Check the CardDAV options and pull the book at ``url`` once, before the car is
        contacted.

        Returns:
            The contact source (for ``run`` to keep polling) and the whole book.

        Raises:
            typer.Exit: bad options (exit 2), credentials refused (exit 8), the server
                failed (exit 1), the book is empty or unreadable (exit 2): one line,
                nothing sent.
        """
        from phone_bridge.carddav.feed import CardDavFeed
        from phone_bridge.cli.app import fail, run_flow

        try:
            config = carddav_config(
                url, self.user, self.password_file, self.ca, self.interval, allow_deletes
            )
            feed = CardDavFeed(config, state_root)
        except BridgeError as exc:
            raise fail(exc, as_json) from None
        return feed, run_flow(feed.pull(), as_json)


def carddav_config(
    url: str,
    user: str | None,
    password_file: Path | None,
    ca: Path | None,
    interval: float = 30.0,
    allow_deletes: bool = False,
) -> CardDavConfig:
    """Check the ``--carddav*`` options and read the password.

    Raises:
        BadInput: a bad URL, a password file that is unreadable or not mode 0600, a user
            without a password (or the reverse), a CA file that is missing, or an interval
            that is not positive (exit 2).
    """
    from phone_bridge.carddav.client import Login
    from phone_bridge.carddav.feed import CardDavConfig

    _check_url(url)
    password = _password(password_file)
    if user and password is None:
        raise BadInput(
            f"--carddav-user needs a password: set ${PASSWORD_ENV} or give "
            "--carddav-password-file (mode 0600)"
        )
    if password is not None and not user:
        raise BadInput("a CardDAV password was given without --carddav-user")
    if ca is not None and not ca.is_file():
        raise BadInput(f"--carddav-ca {ca}: no such file")
    if not interval > 0:
        raise BadInput(f"--carddav-interval must be positive (got {interval})")
    if user and urlsplit(url).scheme == "http" and not _loopback(urlsplit(url).hostname or ""):
        log.warning("sending the CardDAV password over plain http to %s", urlsplit(url).hostname)
    return CardDavConfig(url, Login(user, password, ca), interval, allow_deletes)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"--carddav {url!r} is not an http(s) URL")
    if parts.password is not None:
        raise BadInput(
            f"--carddav: never put a password in the URL; use ${PASSWORD_ENV} or "
            "--carddav-password-file"
        )
    if parts.username is not None:
        raise BadInput("--carddav: give the user with --carddav-user, not in the URL")


def _password(path: Path | None) -> str | None:
    """The password from the file, else from the environment, else None.

    The file is opened once (non-blocking) and its mode checked on that open file, so the
    file checked is the file read (no swap between a stat and a read), and a FIFO or a
    device is refused rather than waited on.
    """
    if path is None:
        return os.environ.get(PASSWORD_ENV)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise BadInput(f"--carddav-password-file {path} is not a regular file")
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                raise BadInput(
                    f"{path} is mode {mode:o}; a password file must be 0600 (chmod 600 {path})"
                )
            raw = f.read(_MAX_PASSWORD_FILE + 1)
    except OSError as exc:
        raise BadInput(f"cannot read --carddav-password-file {path}: {exc.strerror}") from exc
    if len(raw) > _MAX_PASSWORD_FILE:
        raise BadInput(f"--carddav-password-file {path} is over {_MAX_PASSWORD_FILE} bytes")
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise BadInput(f"--carddav-password-file {path} is not UTF-8 text") from None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
