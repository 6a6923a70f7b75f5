"""Finding the address book behind a URL (RFC 6352 section 7, RFC 6764, RFC 5397).

The user gives an address book's URL or a server root. We PROPFIND it (Depth 0):

1. an ``addressbook`` resource type: that is the book;
2. else its ``addressbook-home-set``, or else its ``current-user-principal`` and then that
   principal's home set; when the URL gives neither, ``/.well-known/carddav`` on the same
   origin (it usually redirects to the DAV root) is asked the same;
3. the home set is listed (Depth 1) and its address books are sorted by href.

Several address books: **the first by href is used** and the others are logged by URL, so
the user can pass the one they want as ``--carddav URL``. We sync one book per phone
because the car keeps one mirror per phone, and merging books would merge duplicates of
the same person (iCloud has one book, Google's is ``default``, Nextcloud's own is
``contacts``, which sorts before its generated "recently contacted" book).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from phone_bridge.carddav.client import DavClient, DavStatusError
from phone_bridge.carddav.davxml import CARD, DAV, DavResponse, propfind_body
from phone_bridge.errors import CredentialsRefused, SourceUnavailable

__all__ = ["AddressBook", "Forbidden", "find_address_book"]

log = logging.getLogger("phone_bridge.carddav")

_RESOURCETYPE = f"{{{DAV}}}resourcetype"
_PRINCIPAL = f"{{{DAV}}}current-user-principal"
_HOME = f"{{{CARD}}}addressbook-home-set"
_REPORTS = f"{{{DAV}}}supported-report-set"
_SYNC_TOKEN = f"{{{DAV}}}sync-token"
_ASK = propfind_body([_RESOURCETYPE, _PRINCIPAL, _HOME, _REPORTS, _SYNC_TOKEN])
_IS_BOOK = f"{{{CARD}}}addressbook"
_SYNC_REPORT = f"{{{DAV}}}sync-collection"
# A principal or home set that points back at what we asked: stop rather than loop.
_MAX_HOPS = 4


class Forbidden(CredentialsRefused):
    """HTTP 403 to a discovery request: this user may not see that URL (exit 8)."""


@dataclass(frozen=True)
class AddressBook:
    """A found address book: its absolute URL and whether it offers RFC 6578 sync."""

    url: str
    sync_collection: bool


async def find_address_book(dav: DavClient, url: str) -> AddressBook:
    """Find the address book at or below ``url``.

    Args:
        dav: the client (with the user's credentials).
        url: an address book, a principal, a home set, or a server root.

    Returns:
        The address book (the first by href when there are several).

    Raises:
        CredentialsRefused: HTTP 401, or 403 on a discovery request.
        SourceUnavailable: the server failed, or no address book was found.
    """
    refused: Forbidden | None = None
    try:
        here = await _ask(dav, url)
    except Forbidden as exc:  # maybe only this path is forbidden: the well-known may help
        here, refused = None, exc
    if here is None or not (_is_book(here) or here.hrefs(_HOME) or here.hrefs(_PRINCIPAL)):
        wk = urljoin(url, "/.well-known/carddav")
        log.debug("no address book or principal at %s; asking %s", url, wk)
        found = await _ask(dav, wk)
        here = found or here
    if here is None:
        raise refused or SourceUnavailable(f"no CardDAV service at {url}")
    try:
        return await _follow(dav, here, url)
    except SourceUnavailable as exc:
        if refused is not None:  # what the user named was refused: say that, not the rest
            raise refused from exc
        raise


async def _follow(dav: DavClient, here: DavResponse, url: str) -> AddressBook:
    """From a DAV resource, follow principal and home set to the first address book."""
    for _ in range(_MAX_HOPS):
        if _is_book(here):
            return _book(here)
        homes, principals = here.hrefs(_HOME), here.hrefs(_PRINCIPAL)
        if homes:
            return await _first_book(dav, urljoin(here.href, homes[0]))
        if not principals or urljoin(here.href, principals[0]) == here.href:
            break
        nxt = await _ask(dav, urljoin(here.href, principals[0]))
        if nxt is None:
            break
        here = nxt
    raise SourceUnavailable(f"no address book found at {url} (no addressbook-home-set)")


async def _ask(dav: DavClient, url: str) -> DavResponse | None:
    """PROPFIND Depth 0; the response for ``url`` with its href made absolute, or None."""
    try:
        responses = await dav.propfind(url, _ASK, depth=0)
    except DavStatusError as exc:
        if exc.status == 403:
            raise Forbidden(
                f"the CardDAV server refused access to {exc.url} (HTTP 403); "
                "check --carddav-user, the (app) password and the URL"
            ) from exc
        if exc.status in (400, 404, 405, 501):
            return None  # not a DAV resource: the caller tries the next place
        raise
    if not responses:
        return None
    first = responses[0]
    first.href = urljoin(url, first.href)
    return first


async def _first_book(dav: DavClient, home: str) -> AddressBook:
    """List a home set (Depth 1) and pick the first address book by href."""
    try:
        responses = await dav.propfind(home, _ASK, depth=1)
    except DavStatusError as exc:
        if exc.status == 403:
            msg = f"the CardDAV server refused access to {home} (HTTP 403)"
            raise Forbidden(msg) from exc
        raise
    books = []
    for r in responses:
        r.href = urljoin(home, r.href)
        if _is_book(r) and _same_origin(r.href, home):
            books.append(r)
    if not books:
        raise SourceUnavailable(f"no address book in the home set {home}")
    books.sort(key=lambda r: r.href)
    if len(books) > 1:
        others = ", ".join(b.href for b in books[1:])
        log.warning(
            "%d address books found; using %s (others: %s; pass one as --carddav to choose)",
            len(books), books[0].href, others,
        )  # fmt: skip
    return _book(books[0])


def _is_book(r: DavResponse) -> bool:
    return r.status < 300 and r.has_child(_RESOURCETYPE, _IS_BOOK)


def _book(r: DavResponse) -> AddressBook:
    # A server that lists its reports and leaves sync-collection out gets ETag polling;
    # one that says nothing is tried with sync-collection (and falls back if it fails).
    reports = r.props.get(_REPORTS)
    offers = reports is None or reports.find(f".//{_SYNC_REPORT}") is not None
    return AddressBook(r.href, offers or _SYNC_TOKEN in r.props)


def _same_origin(a: str, b: str) -> bool:
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.netloc) == (y.scheme, y.netloc)
