"""A test double of the car's Classic side (``carhub.pbap``): it drives ``ClassicEvents``.

``FakeClassicSide.pull`` reports a phone book into the engine in the order the seam
(``carhub.classic``) defines: book state, then skip, or text pages, photo pages, calls and
done; ``fail_at`` stops it after that many pages with ``classic_pull_failed``. The skip
decision is ``protocol.pbap.decide``'s, as the real side makes it. Shared by
tests/carhub/test_classic_*.py and tests/e2e/test_dashboard_classic.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from carhub.classic import CallEntry, ClassicEvents, PulledPage
from protocol.contacts import Contact, Photo, photo_hash
from protocol.pbap import AppParams, BookState, decide

__all__ = ["FakeClassicHandle", "FakeClassicSide", "book_of", "photo_of", "state_of"]


class FakeClassicHandle:
    """A connected Classic phone as the engine sees it; records ``close``."""

    transport_name = "classic"

    def __init__(self, address: str) -> None:
        self.address = address
        self.closed: str | None = None

    def close(self, reason: str) -> None:
        self.closed = reason


def state_of(primary: int, *, database: int = 1, size: int = 0) -> BookState:
    """A phone's book state with 16-byte counters."""
    return BookState(
        database_id=database.to_bytes(16, "big"),
        primary=primary.to_bytes(16, "big"),
        secondary=primary.to_bytes(16, "big"),
        size=size,
    )


def book_of(n: int, *, photos: int = 0, prefix: str = "Contact") -> list[Contact]:
    """``n`` contacts ``u0000``...; the first ``photos`` of them carry a photo hash."""
    return [
        Contact(
            uid=f"u{i:04d}",
            fn=f"{prefix} {i:04d}",
            n=(f"{prefix}", f"{i:04d}"),
            photo=photo_of(f"photo u{i:04d}".encode()) if i < photos else b"",
        )
        for i in range(n)
    ]


_BLOBS: dict[bytes, bytes] = {}


def photo_of(data: bytes) -> bytes:
    """The hash of a photo the fake phone can send (its bytes are remembered)."""
    _BLOBS[photo_hash(data)] = data
    return photo_hash(data)


def photo_blob(contact: Contact) -> Photo:
    """The blob a contact's photo hash names (made by ``photo_of``)."""
    return Photo(hash=contact.photo, mime="image/jpeg", data=_BLOBS[contact.photo])


@dataclass
class FakeClassicSide:
    """Reports pulls into the engine as ``carhub.pbap`` would; records connect requests."""

    events: ClassicEvents
    page_size: int = 500
    connects: list[str] = field(default_factory=list)

    def connect(self, address: str) -> None:
        self.connects.append(address)

    def pull(
        self,
        phone_id: str,
        book: list[Contact],
        state: BookState | None,
        *,
        owner: str | None = "Phone Owner",
        calls: list[CallEntry] | None = None,
        fail_at: int | None = None,
    ) -> str:
        """Run one pull; returns "skipped", "done" or "failed"."""
        ev = self.events
        probe = AppParams(
            phonebook_size=len(book) + 1,
            database_identifier=state.database_id if state else None,
            primary_version_counter=state.primary if state else None,
            secondary_version_counter=state.secondary if state else None,
        )
        if decide(ev.classic_book_state(phone_id), probe) == "skip":
            assert state is not None
            ev.classic_pull_skipped(phone_id, state)
            ev.classic_calls(phone_id, calls or [])
            return "skipped"
        chunks = [book[i : i + self.page_size] for i in range(0, len(book), self.page_size)]
        sent = 0
        for stage in ("contacts", "photos"):
            done = 0
            for i, chunk in enumerate(chunks):
                if fail_at is not None and sent == fail_at:
                    ev.classic_pull_failed(phone_id, "the phone disconnected mid-page")
                    return "failed"
                done += len(chunk)
                ev.classic_page(phone_id, self._page(stage, chunk, i == 0, owner, done, len(book)))
                sent += 1
        ev.classic_calls(phone_id, calls or [])
        ev.classic_pull_done(phone_id, state, frozenset(c.uid for c in book))
        return "done"

    @staticmethod
    def _page(
        stage: str, chunk: list[Contact], first: bool, owner: str | None, done: int, total: int
    ) -> PulledPage:
        if stage == "contacts":
            cards = [msgspec.structs.replace(c, photo=b"") for c in chunk]
            return PulledPage("contacts", cards, owner=owner if first else None,
                              done=done, total=total)  # fmt: skip
        cards = [Contact(uid=c.uid, fn=c.fn, n=c.n, photo=c.photo) for c in chunk]
        blobs = [photo_blob(c) for c in chunk if c.photo]
        return PulledPage("photos", cards, photos=blobs, done=done, total=total)
