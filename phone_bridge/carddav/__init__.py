"""Contacts from a CardDAV server (iCloud, Google, Nextcloud, Radicale): a small client.

No maintained CardDAV client library exists for Python, so this is one, on httpx, with
only what a one-way sync needs:

    options    the ``--carddav*`` options, the password (environment or a 0600 file)
    feed       ``CardDavFeed``: pull, store, import the cards as ``Contacts``; ``run``'s poll
    pull       one pull: RFC 6578 sync-collection + addressbook-multiget, ETag fallback
    discovery  the address book behind a URL (/.well-known/carddav, principal, home set)
    client     ``DavClient``: PROPFIND and REPORT over httpx, timeouts and size caps
    davxml     request bodies (ElementTree) and multistatus parsing (defusedxml)
    store      the book's state in the phone's state dir (token, href -> etag -> uid, cards)

Nothing here is imported by the CLI unless ``--carddav`` is given, except ``options``,
which imports neither httpx nor defusedxml.
"""

from __future__ import annotations

__all__: list[str] = []
