"""The CardDAV contact source: pull, store, and hand the whole book to the sync as ``Contacts``.

``sync`` pulls once before it connects to the car; ``run`` pulls once before it connects,
then ``CardDavFeed.run`` pulls every ``--carddav-interval`` seconds and, when the book
changed, sets ``changed`` for the bridge, which syncs ``take()`` to the car.

Every card goes through ``protocol.vcard.import_vcards``, the importer files use, one card
at a time with one shared UID count (as PBAP pages do), so every quirk and malformed-card
rule holds; a card that is skipped is reported by its href. The hardening rules hold too:
an address book in which no card can be read is refused, an empty one is refused unless
``--allow-deletes``, and a server that fails or answers garbage changes nothing (the pull
raises before anything is stored or sent). A sync that would delete over half of the car's
copy meets the same guard as a file (``protocol.sync.guard``, exit 7).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from phone_bridge.carddav.client import DavClient, Login
from phone_bridge.carddav.pull import PullResult, pull
from phone_bridge.carddav.store import (
    BookState,
    StoredCard,
    load_book_state,
    save_book_state,
    state_path,
)
from phone_bridge.engine import Contacts
from phone_bridge.errors import BadInput, BridgeError
from protocol.errors import VCardError
from protocol.vcard import import_vcards

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_INTERVAL", "CardDavConfig", "CardDavFeed", "book_contacts"]

log = logging.getLogger("phone_bridge.carddav")
DEFAULT_INTERVAL = 30.0


@dataclass(frozen=True)
class CardDavConfig:
    """Where the address book is, who we are there, how often ``run`` polls.

    Args:
        url: an address book, or a server root to discover it from.
        login: the user, password and extra CA file.
        interval: seconds between pulls in ``run``.
        allow_empty: an empty book empties the car's copy (``--allow-deletes``).
    """

    url: str
    login: Login = field(default_factory=Login)
    interval: float = DEFAULT_INTERVAL
    allow_empty: bool = False


class CardDavFeed:
    """One address book as a contact source, its state kept in the phone's state dir.

    Args:
        config: the book and the credentials.
        state_root: the phone's state directory.
        transport: an httpx transport (tests); default: the network.
    """

    def __init__(
        self,
        config: CardDavConfig,
        state_root: Path,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.path = state_path(state_root, config.url, config.login.user)
        self.state = load_book_state(self.path, config.url)
        self.changed = asyncio.Event()
        self.last: PullResult | None = None
        self._transport = transport
        self._latest: Contacts | None = None

    async def pull(self) -> Contacts:
        """Pull once (discovering the book the first time); store it; return the whole book.

        Returns:
            Every contact of the book.

        Raises:
            CredentialsRefused: the server refused the credentials (exit 8).
            SourceUnavailable: the server failed; nothing stored changed.
            BadInput: the book is empty (without ``allow_empty``) or no card could be read.
        """
        start = time.perf_counter()
        async with DavClient(self.config.login, self._transport, origin=self.config.url) as dav:
            result = await pull(dav, self.state)
        self.last = result
        if self._latest is not None and not result.changes and not result.full:
            if result.state.token != self.state.token:
                save_book_state(self.path, result.state)
            self.state = result.state
            return self._latest  # nothing changed: no re-import
        try:
            contacts = book_contacts(result.state, allow_empty=self.config.allow_empty)
        finally:  # the server's truth is stored even when it is refused for the car
            save_book_state(self.path, result.state)
            self.state = result.state
        log.info(
            "pulled %s: %d added, %d changed, %d deleted (%s, %d requests, %.2f s)",
            result.state.book, result.added, result.changed, result.deleted,
            "full" if result.full else "delta", result.requests, time.perf_counter() - start,
        )  # fmt: skip
        _log_skipped(contacts)
        self._latest = contacts
        return contacts

    def latest(self) -> Contacts:
        """The last book pulled (``pull`` must have succeeded once)."""
        if self._latest is None:
            raise RuntimeError("CardDavFeed.latest() before a successful pull()")
        return self._latest

    def take(self) -> Contacts | None:
        """The book if it changed since the last ``take``, else None; clears ``changed``."""
        if not self.changed.is_set():
            return None
        self.changed.clear()
        return self._latest

    async def run(self) -> None:
        """Pull every ``interval`` seconds; set ``changed`` when the book changed.

        A failed pull (the server is down, refuses us, or sends garbage) is logged as one
        line and retried at the next interval; the car keeps what it has.
        """
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            # One pull per interval, start to start: a slow pull does not stretch the period.
            due = max(due + self.config.interval, loop.time())
            await asyncio.sleep(due - loop.time())
            try:
                await self.pull()
            except BridgeError as exc:
                log.error("CardDAV: %s; the car keeps its current contacts", exc)
                continue
            if self.last is not None and self.last.changes:
                log.info("%s changed; syncing", self.state.book)
                self.changed.set()


def book_contacts(state: BookState, *, allow_empty: bool = False) -> Contacts:
    """Import every stored card (in href order) through the file importer.

    Each card's UID is recorded in ``state.cards`` (the href -> etag -> uid map).

    Raises:
        BadInput: no card (without ``allow_empty``), or none could be read.
    """
    book = state.book or state.source
    if not state.cards:
        if allow_empty:
            return Contacts([], {})
        raise BadInput(
            f"the address book {book} is empty; nothing was synced "
            "(to empty the car's copy on purpose, pass --allow-deletes)"
        )
    out = Contacts([], {})
    seen: dict[str, int] = {}
    for n, href in enumerate(sorted(state.cards), 1):
        card = state.cards[href]
        result = import_vcards(card.data, seen=seen)
        if not result.is_vcard or result.truncated:
            why = "not a vCard" if not result.is_vcard else "the card is cut short"
            out.errors.append(VCardError(n, f"{href}: {why}"))
            continue
        out.errors += [VCardError(n, f"{href}: {e.reason}") for e in result.errors]
        out.warnings += [VCardError(n, f"{href}: {e.reason}") for e in result.warnings]
        out.contacts += result.contacts
        out.photos.update(result.photos)
        uid = result.contacts[0].uid if result.contacts else ""
        if uid != card.uid:
            state.cards[href] = StoredCard(card.etag, uid, card.data)
    if not out.contacts:
        first = out.errors[0].reason if out.errors else "no card"
        raise BadInput(
            f"no card in {book} could be read ({len(out.errors)} skipped; first: {first}); "
            "nothing was synced"
        )
    return out


def _log_skipped(contacts: Contacts) -> None:
    for err in contacts.errors:
        log.warning("skipped card %d: %s", err.line, err.reason)
    for err in contacts.warnings:
        log.warning("skipped a line of card %d (card kept): %s", err.line, err.reason)
