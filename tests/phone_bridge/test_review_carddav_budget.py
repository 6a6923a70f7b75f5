"""A CardDAV pull is bounded as a whole, not only answer by answer."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from phone_bridge.carddav import pull as pull_mod
from phone_bridge.carddav.client import Login
from phone_bridge.carddav.feed import CardDavConfig, CardDavFeed
from phone_bridge.errors import SourceUnavailable

BOOK = "https://dav.example/book/"
_HEAD = (
    '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav">'
)


def _card(n: int) -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u{n}\r\nFN:Person {n}\r\nEND:VCARD\r\n"


class Book:
    """A book of ``n`` cards, truncating its sync listing every ``per_round`` hrefs."""

    def __init__(self, n: int, per_round: int) -> None:
        self.n, self.per_round = n, per_round

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        if request.method == "PROPFIND":
            props = "<d:resourcetype><d:collection/><c:addressbook/></d:resourcetype>"
            return self._ms([("/book/", props, "200 OK")])
        if "sync-collection" in body:
            token = re.search(r"<D:sync-token>(\d+)<", body)
            start = int(token.group(1)) if token else 0
            end = min(start + self.per_round, self.n)
            rows = [(f"/book/c{i}.vcf", f"<d:getetag>e{i}</d:getetag>", "200 OK")
                    for i in range(start, end)]  # fmt: skip
            if end < self.n:
                rows.append(("/book/", "", "507 Insufficient Storage"))
            return self._ms(rows, token=str(end))
        hrefs = [h.split("<")[0] for h in body.split("<D:href>")[1:]]
        rows = [(h, f"<d:getetag>e</d:getetag><c:address-data>{_card(i)}</c:address-data>",
                 "200 OK") for i, h in enumerate(hrefs)]  # fmt: skip
        return self._ms(rows)

    @staticmethod
    def _ms(rows: list[tuple[str, str, str]], token: str = "") -> httpx.Response:
        parts = [_HEAD]
        for href, props, status in rows:
            parts.append(f"<d:response><d:href>{href}</d:href><d:propstat><d:prop>{props}"
                         f"</d:prop><d:status>HTTP/1.1 {status}</d:status></d:propstat>"
                         "</d:response>")  # fmt: skip
        if token:
            parts.append(f"<d:sync-token>{token}</d:sync-token>")
        parts.append("</d:multistatus>")
        return httpx.Response(207, content="".join(parts).encode())


def _pull(tmp_path: Path, book: Book) -> object:
    feed = CardDavFeed(CardDavConfig(BOOK, Login()), tmp_path / "p", httpx.MockTransport(book))
    return asyncio.run(feed.pull())


def test_a_book_listing_more_cards_than_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull_mod, "MAX_CARDS", 30, raising=False)
    assert len(_pull(tmp_path / "a", Book(30, 10)).contacts) == 30  # type: ignore[attr-defined]
    with pytest.raises(SourceUnavailable, match="over 30 cards"):
        _pull(tmp_path / "b", Book(31, 10))  # over 4 truncated rounds


def test_a_pull_fetching_more_bytes_than_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull_mod, "MAX_PULL_BYTES", 40 * len(_card(10)), raising=False)
    with pytest.raises(SourceUnavailable, match="bytes of cards"):
        _pull(tmp_path, Book(120, 1000))
