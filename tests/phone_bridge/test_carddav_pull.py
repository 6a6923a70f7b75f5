"""CardDAV pulls against a real Radicale server (a subprocess on loopback).

What a user would check: the contacts the phone would sync, how many requests a pull took
(a delta is one sync-collection and one multiget), and what survives a failure.
"""

from __future__ import annotations

import base64
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from phone_bridge.carddav import client as client_mod
from phone_bridge.carddav.client import Login
from phone_bridge.carddav.feed import CardDavConfig, CardDavFeed
from phone_bridge.errors import BadInput, CredentialsRefused, SourceUnavailable
from protocol.contacts import photo_hash
from shell.sample_data import sample_png
from tests.phone_bridge.carddav_radicale import Radicale, card, self_signed_cert, serving

ALICE = Login("alice", "secret")


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    cards = {f"c{i}.vcf": card(f"uid-{i}", f"Person {i}", f"+4930000{i}") for i in range(5)}
    with serving(tmp_path / "radicale", cards) as server:
        yield server


class Hook(httpx.AsyncBaseTransport):
    """The network, with a look at (and a say on) every request first."""

    def __init__(
        self,
        before: Callable[[httpx.Request], httpx.Response | None],
        after: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.before, self.after = before, after
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.before(request)
        if answer is not None:
            return answer
        response = await self.inner.handle_async_request(request)
        if self.after is None:
            return response
        body = self.after(await response.aread())
        headers = {"content-type": response.headers.get("content-type", "text/xml")}
        return httpx.Response(response.status_code, headers=headers, content=body)

    async def aclose(self) -> None:  # the feed's clients come and go; the test closes it
        pass


def feed(tmp_path: Path, url: str, login: Login = ALICE, **kw: object) -> CardDavFeed:
    return CardDavFeed(CardDavConfig(url, login), tmp_path / "phone", **kw)  # type: ignore[arg-type]


def names(contacts: object) -> list[str]:
    return sorted(c.fn for c in contacts.contacts)  # type: ignore[attr-defined]


async def test_first_pull_from_the_server_root_gets_every_card(
    radicale: Radicale, tmp_path: Path
) -> None:
    f = feed(tmp_path, radicale.base + "/")
    book = await f.pull()
    assert names(book) == [f"Person {i}" for i in range(5)]
    assert [c.phones[0].number for c in sorted(book.contacts, key=lambda c: c.fn)] == [
        f"+4930000{i}" for i in range(5)
    ]
    assert f.state.book == radicale.book_url()
    assert f.last is not None and f.last.full and f.last.added == 5
    assert stat.S_IMODE(f.path.stat().st_mode) == 0o600
    assert {c.uid for c in f.state.cards.values()} == {f"uid-{i}" for i in range(5)}
    # Nothing changed: one sync-collection request, nothing fetched.
    await f.pull()
    assert f.last.requests == 1 and not f.last.changes


async def test_a_url_without_dav_is_found_through_well_known(
    radicale: Radicale, tmp_path: Path
) -> None:
    hook = Hook(lambda r: None)
    f = feed(tmp_path, radicale.base + "/no/such/place/", transport=hook)
    assert len((await f.pull()).contacts) == 5
    assert any(r.url.path == "/.well-known/carddav" for r in hook.seen)
    await hook.inner.aclose()


async def test_a_changed_card_is_one_sync_and_one_multiget(
    radicale: Radicale, tmp_path: Path
) -> None:
    f = feed(tmp_path, radicale.book_url())
    await f.pull()
    radicale.write("c2.vcf", card("uid-2", "Person 2 renamed", "+4930999"))
    book = await f.pull()
    assert f.last is not None and (f.last.changed, f.last.added, f.last.deleted) == (1, 0, 0)
    assert f.last.requests == 2 and not f.last.full
    assert "Person 2 renamed" in names(book) and "Person 2" not in names(book)
    assert len(book.contacts) == 5


async def test_a_deleted_card_is_gone_after_one_request(radicale: Radicale, tmp_path: Path) -> None:
    f = feed(tmp_path, radicale.book_url())
    await f.pull()
    radicale.delete("c3.vcf")
    book = await f.pull()
    assert f.last is not None and f.last.deleted == 1 and f.last.requests == 1
    assert names(book) == ["Person 0", "Person 1", "Person 2", "Person 4"]
    assert "/alice/book/c3.vcf" not in f.state.cards


async def test_an_added_card_with_a_photo_brings_its_photo(
    radicale: Radicale, tmp_path: Path
) -> None:
    f = feed(tmp_path, radicale.book_url())
    await f.pull()
    png = sample_png(3)
    b64 = base64.b64encode(png).decode()
    folded = "\n ".join(b64[i : i + 70] for i in range(0, len(b64), 70))
    radicale.write(
        "new.vcf", card("uid-new", "With Photo", extra=f"PHOTO;ENCODING=b;TYPE=PNG:{folded}")
    )
    book = await f.pull()
    assert f.last is not None and f.last.added == 1
    (who,) = [c for c in book.contacts if c.fn == "With Photo"]
    assert who.photo == photo_hash(png)
    assert book.photos[who.photo].data == png


async def test_an_invalid_token_falls_back_to_a_full_pull_without_duplicates(
    radicale: Radicale, tmp_path: Path
) -> None:
    f = feed(tmp_path, radicale.book_url())
    await f.pull()
    f.state.token = "http://radicale.org/ns/sync/0000expired"
    radicale.delete("c0.vcf")
    radicale.write("c1.vcf", card("uid-1", "Person 1 new"))
    book = await f.pull()
    assert f.last is not None and f.last.full
    # One refused report, one full listing, one multiget of just the changed card.
    assert f.last.requests == 3 and (f.last.changed, f.last.deleted) == (1, 1)
    assert names(book) == ["Person 1 new", "Person 2", "Person 3", "Person 4"]
    assert len({c.uid for c in book.contacts}) == len(book.contacts) == 4
    assert f.state.token.startswith("http://radicale.org/ns/sync/")
    assert "0000expired" not in f.state.token


async def test_a_server_without_sync_collection_is_polled_by_etag(
    radicale: Radicale, tmp_path: Path
) -> None:
    def no_sync(r: httpx.Request) -> httpx.Response | None:
        if r.method == "REPORT" and b"sync-collection" in r.content:
            return httpx.Response(501)
        return None

    hook = Hook(no_sync)
    f = feed(tmp_path, radicale.book_url(), transport=hook)
    assert len((await f.pull()).contacts) == 5
    assert not f.state.sync_collection
    radicale.write("c4.vcf", card("uid-4", "Person 4 moved"))
    hook.seen.clear()
    book = await f.pull()
    assert "Person 4 moved" in names(book)
    assert [r.method for r in hook.seen] == ["PROPFIND", "REPORT"]  # etags, then one multiget
    assert hook.seen[1].content.count(b"<D:href>") == 1
    await hook.inner.aclose()


async def test_a_server_that_goes_away_mid_pull_loses_nothing(
    radicale: Radicale, tmp_path: Path
) -> None:
    f = feed(tmp_path, radicale.book_url())
    await f.pull()
    stored = f.path.read_bytes()
    radicale.write("c0.vcf", card("uid-0", "Person 0 changed"))

    def die_at_multiget(r: httpx.Request) -> httpx.Response | None:
        if b"addressbook-multiget" in r.content:
            radicale.kill()  # after its sync-collection answer, before the cards
        return None

    hook = Hook(die_at_multiget)
    dying = feed(tmp_path, radicale.book_url(), transport=hook)
    with pytest.raises(SourceUnavailable, match="cannot reach the CardDAV server"):
        await dying.pull()
    assert f.path.read_bytes() == stored  # the old token and cards, untouched
    radicale.start()
    book = await feed(tmp_path, radicale.book_url()).pull()
    assert "Person 0 changed" in names(book) and len(book.contacts) == 5
    await hook.inner.aclose()


async def test_wrong_credentials_are_exit_8(radicale: Radicale, tmp_path: Path) -> None:
    for url in (radicale.base + "/", radicale.book_url()):
        with pytest.raises(CredentialsRefused) as caught:
            await feed(tmp_path, url, Login("alice", "wrong")).pull()
        assert caught.value.code == 8 and "alice" in str(caught.value)
        assert "\n" not in str(caught.value)
    with pytest.raises(CredentialsRefused, match="403"):  # bob's login, alice's book
        radicale.users["bob"] = "pw"
        radicale.stop()
        radicale.start()
        await feed(tmp_path, radicale.book_url(), Login("bob", "pw")).pull()


async def test_tls_with_a_self_signed_certificate_needs_carddav_ca(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    cards = {"a.vcf": card("a", "Over TLS")}
    with serving(tmp_path / "radicale", cards, tls=(cert, key)) as server:
        with pytest.raises(SourceUnavailable, match="not trusted"):
            await feed(tmp_path, server.book_url()).pull()
        book = await feed(tmp_path, server.book_url(), Login("alice", "secret", cert)).pull()
        assert names(book) == ["Over TLS"]


async def test_a_card_radicale_cannot_read_is_left_out_by_the_server(
    radicale: Radicale, tmp_path: Path
) -> None:
    f = feed(tmp_path, radicale.book_url())
    await f.pull()
    radicale.write("c1.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:uid-1\r\nEND:VCARD\r\n")
    book = await f.pull()  # Radicale skips a card without FN: to a client it is deleted
    assert names(book) == ["Person 0", "Person 2", "Person 3", "Person 4"]


GARBAGE = "BEGIN:VCARD\nVERSION:3.0\nTHIS LINE HAS NO COLON\nEND:VCARD\n"


def garbage_cards(keep: set[str]) -> Callable[[bytes], bytes]:
    """Replace the address-data of every card but ``keep`` (UIDs) with a broken card."""
    import re

    def swap(body: bytes) -> bytes:
        def one(m: re.Match[bytes]) -> bytes:
            if any(re.search(rf"UID:{u}(?![\w-])".encode(), m.group(2)) for u in keep):
                return m.group(0)
            return m.group(1) + GARBAGE.encode() + m.group(3)

        return re.sub(rb"(<CR:address-data>)(.*?)(</CR:address-data>)", one, body, flags=re.S)

    return swap


async def test_malformed_cards_are_skipped_by_href_and_garbage_never_empties(
    radicale: Radicale, tmp_path: Path
) -> None:
    hook = Hook(lambda r: None, garbage_cards(keep={"uid-0", "uid-2", "uid-3", "uid-4"}))
    book = await feed(tmp_path, radicale.book_url(), transport=hook).pull()
    assert names(book) == ["Person 0", "Person 2", "Person 3", "Person 4"]
    assert [e.reason.split(":")[0] for e in book.errors] == ["/alice/book/c1.vcf"]
    hook.after = garbage_cards(keep=set())
    with pytest.raises(BadInput, match=r"no card in .* could be read"):
        await feed(tmp_path / "b", radicale.book_url(), transport=hook).pull()
    await hook.inner.aclose()


async def test_an_empty_book_is_refused_unless_allowed(radicale: Radicale, tmp_path: Path) -> None:
    for i in range(5):
        radicale.delete(f"c{i}.vcf")
    with pytest.raises(BadInput, match="is empty; nothing was synced"):
        await feed(tmp_path, radicale.book_url()).pull()
    config = CardDavConfig(radicale.book_url(), ALICE, allow_empty=True)
    assert (await CardDavFeed(config, tmp_path / "phone").pull()).contacts == []


@pytest.mark.parametrize(
    "body",
    [
        b"<not xml",
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<multistatus xmlns="DAV:"><response><href>&x;</href></response></multistatus>',
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<multistatus xmlns="DAV:"><sync-token>&b;</sync-token></multistatus>',
        b'<html xmlns="DAV:">hello</html>',
    ],
    ids=["not-xml", "external-entity", "entity-expansion", "not-multistatus"],
)
async def test_a_garbage_answer_changes_nothing(
    radicale: Radicale, tmp_path: Path, body: bytes
) -> None:
    f = feed(tmp_path, radicale.book_url())
    await f.pull()
    stored = f.path.read_bytes()
    radicale.delete("c0.vcf")
    hook = Hook(lambda r: httpx.Response(207, content=body) if r.method == "REPORT" else None)
    with pytest.raises(SourceUnavailable, match="bad answer"):
        await feed(tmp_path, radicale.book_url(), transport=hook).pull()
    assert f.path.read_bytes() == stored
    await hook.inner.aclose()


async def test_an_oversized_answer_is_refused(
    radicale: Radicale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_mod, "MAX_RESPONSE_BYTES", 200)
    with pytest.raises(SourceUnavailable, match="over 200 bytes; refused"):
        await feed(tmp_path, radicale.book_url()).pull()
