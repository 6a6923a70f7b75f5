"""One pull of an address book: list what changed, fetch only that, return the new state.

Theory of operation:

- **Listing.** With a stored token, an RFC 6578 ``sync-collection`` REPORT from it gives the
  hrefs changed since (with their ETags) and the hrefs deleted (status 404). Without one, the
  same REPORT with an empty token lists every href (the first pull). A server that refuses
  the token (403/409 ``valid-sync-token``, or 400/410) gets a tokenless listing: a full
  pull. A server without the report (discovery said so, or the tokenless REPORT is 400,
  403, 405 or 501) is listed with ``PROPFIND Depth: 1`` of ``getetag`` instead, and later
  pulls compare ETags. A truncated answer (507 on the collection, RFC 6578 section 3.6)
  is followed with its new token.
- **Fetching.** Hrefs whose ETag differs from the stored one are fetched with
  ``addressbook-multiget``, ``MULTIGET_CHUNK`` at a time. A full listing also deletes every
  stored href it did not list, so a full pull after a lost token cannot leave duplicates.
- **Nothing half-done.** The new state is returned only once every request succeeded; the
  caller saves it. A failure anywhere raises and leaves the stored state (and the car) as
  they were, so the next pull starts again from the old token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urljoin, urlsplit

from phone_bridge.carddav.client import DavClient, DavStatusError
from phone_bridge.carddav.davxml import (
    CARD,
    DAV,
    multiget_body,
    propfind_body,
    sync_collection_body,
)
from phone_bridge.carddav.discovery import find_address_book
from phone_bridge.carddav.store import BookState, StoredCard
from phone_bridge.errors import CredentialsRefused, SourceUnavailable

__all__ = ["MULTIGET_CHUNK", "PullResult", "pull"]

log = logging.getLogger("phone_bridge.carddav")

# Cards per multiget: 50 cards with photos stay well below the client's response cap.
MULTIGET_CHUNK = 50
# Truncated sync-collection answers followed at most this often in one pull.
_MAX_ROUNDS = 1000
# Each answer is capped (the client's MAX_RESPONSE_BYTES), but a pull is many answers: a
# broken or hostile server could list a billion hrefs over its rounds, or fill every
# multiget, until we run out of memory. A book past these is refused, nothing stored.
MAX_CARDS = 250_000
MAX_PULL_BYTES = 1 << 30  # vCard bytes fetched in one pull
# RFC 3986 pchar plus "/": what a canonical path leaves unencoded.
_PCHAR = "/:@!$&'()*+,;=-._~"
_ETAG = f"{{{DAV}}}getetag"
_DATA = f"{{{CARD}}}address-data"
_RESOURCETYPE = f"{{{DAV}}}resourcetype"
# Statuses of a sync-collection with a token that mean "this token is no good here".
_TOKEN_REFUSED = frozenset({400, 403, 409, 410})
# Statuses of a tokenless sync-collection that mean "no such report here".
_NO_REPORT = frozenset({400, 403, 405, 501})


@dataclass
class PullResult:
    """What a pull found: the new state to save, and how many hrefs changed."""

    state: BookState
    added: int = 0
    changed: int = 0
    deleted: int = 0
    full: bool = False  # the whole book was listed (first pull, or a refused token)
    requests: int = 0

    @property
    def changes(self) -> bool:
        """Whether the book differs from the stored one."""
        return bool(self.added or self.changed or self.deleted)


@dataclass
class _Listing:
    etags: dict[str, str] = field(default_factory=dict)  # href -> etag, changed or all
    deleted: set[str] = field(default_factory=set)
    token: str = ""
    full: bool = False


async def pull(dav: DavClient, state: BookState) -> PullResult:
    """Pull the changes of the address book ``state`` describes.

    Args:
        dav: the client.
        state: the stored state (not modified).

    Returns:
        The new state and counts; save it once the caller accepts it.

    Raises:
        CredentialsRefused: the server refused the credentials.
        SourceUnavailable: the server failed, timed out or sent what we cannot read.
    """
    before = dav.requests
    new = BookState(state.source, state.book, state.sync_collection, state.token, state.cards)
    if not new.book:
        book = await find_address_book(dav, new.source)
        new.book, new.sync_collection, new.token, new.cards = book.url, book.sync_collection, "", {}
    listing = await _list(dav, new)
    result = await _apply(dav, new, listing)
    result.requests = dav.requests - before
    return result


async def _list(dav: DavClient, state: BookState) -> _Listing:
    """List what changed (or everything); may switch ``state`` to ETag mode."""
    if state.sync_collection and state.token:
        try:
            return await _sync_listing(dav, state.book, state.token)
        except DavStatusError as exc:
            if exc.status not in _TOKEN_REFUSED:
                raise
            log.info("the server refused the sync token (HTTP %d); pulling the whole book",
                     exc.status)  # fmt: skip
    if state.sync_collection:
        try:
            return await _sync_listing(dav, state.book, "")
        except DavStatusError as exc:
            if exc.status not in _NO_REPORT:
                raise
            log.info("no sync-collection at %s (HTTP %d); comparing ETags", state.book, exc.status)
            state.sync_collection = False
    return await _etag_listing(dav, state.book)


async def _sync_listing(dav: DavClient, book: str, token: str) -> _Listing:
    """RFC 6578 sync-collection from ``token``, following truncated answers."""
    out = _Listing(full=not token)
    for _ in range(_MAX_ROUNDS):
        responses, new_token = await dav.report(book, sync_collection_body(token), depth=0)
        truncated = False
        for r in responses:
            href = _path(book, r.href)
            if href == _path(book, book):
                truncated = truncated or r.status == 507
            elif r.status == 404:
                out.deleted.add(href)
                out.etags.pop(href, None)
            elif r.status < 300:
                out.etags[href] = r.text(_ETAG)
                out.deleted.discard(href)
        _check_count(book, out.etags)
        if not new_token:
            raise SourceUnavailable(f"the CardDAV server sent no sync token for {book}")
        out.token = token = new_token
        if not truncated:
            return out
    raise SourceUnavailable(f"the CardDAV server's sync of {book} never ended")


async def _etag_listing(dav: DavClient, book: str) -> _Listing:
    """PROPFIND Depth 1 of every card's ETag: the listing of a server without sync."""
    try:
        responses = await dav.propfind(book, propfind_body([_RESOURCETYPE, _ETAG]), depth=1)
    except DavStatusError as exc:
        if exc.status == 403:
            msg = f"the CardDAV server refused access to {book} (HTTP 403)"
            raise CredentialsRefused(msg) from exc
        raise
    out = _Listing(full=True)
    for r in responses:
        href = _path(book, r.href)
        if href != _path(book, book) and r.status < 300 and _ETAG in r.props:
            out.etags[href] = r.text(_ETAG)
    _check_count(book, out.etags)
    return out


def _check_count(book: str, etags: dict[str, str]) -> None:
    if len(etags) > MAX_CARDS:
        msg = f"the CardDAV server lists over {MAX_CARDS:,} cards in {book}; refused"
        raise SourceUnavailable(msg)


async def _apply(dav: DavClient, state: BookState, listing: _Listing) -> PullResult:
    """Fetch the changed cards and build the new state."""
    old = state.cards
    cards = dict(old)
    gone = set(old) - set(listing.etags) if listing.full else set(listing.deleted)
    for href in gone:
        cards.pop(href, None)
    # No ETag (a server may omit it): fetch the card every time rather than miss a change.
    wanted = [h for h, e in listing.etags.items() if h not in old or old[h].etag != e or not e]
    fetched = await _multiget(dav, state.book, wanted)
    for href in wanted:
        if href in fetched:
            cards[href] = fetched[href]
        else:  # listed, then gone before we fetched it: deleted since
            cards.pop(href, None)
    state.cards, state.token = cards, listing.token
    result = PullResult(state, full=listing.full)
    result.deleted = sum(1 for h in old if h not in cards)
    result.added = sum(1 for h in cards if h not in old)
    result.changed = sum(1 for h in cards if h in old and cards[h].data != old[h].data)
    return result


async def _multiget(dav: DavClient, book: str, hrefs: list[str]) -> dict[str, StoredCard]:
    """addressbook-multiget ``hrefs`` in chunks; the cards found, by href."""
    out: dict[str, StoredCard] = {}
    size = 0
    for i in range(0, len(hrefs), MULTIGET_CHUNK):
        chunk = hrefs[i : i + MULTIGET_CHUNK]
        asked = {_path(book, h) for h in chunk}
        responses, _ = await dav.report(book, multiget_body(chunk), depth=1)
        for r in responses:
            href = _path(book, r.href)
            if href in asked and r.status < 300 and _DATA in r.props:  # only what we asked
                data = r.text(_DATA).encode("utf-8")
                size += len(data)
                out[href] = StoredCard(r.text(_ETAG), "", data)
        if size > MAX_PULL_BYTES:
            msg = f"the CardDAV server sent over {MAX_PULL_BYTES:,} bytes of cards; refused"
            raise SourceUnavailable(msg)
    return out


def _path(base: str, href: str) -> str:
    """An href as a canonical path, so ``/a%40b/x`` and ``/a@b/x`` are one key (and one
    that can be sent back in a multiget); a collection's trailing slash is dropped."""
    path = unquote(urlsplit(urljoin(base, href)).path)
    return quote(path, safe=_PCHAR).rstrip("/") or "/"
