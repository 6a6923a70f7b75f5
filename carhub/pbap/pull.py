"""One PBAP pull over an open OBEX session, in the order ``carhub.classic`` defines.

probe -> ``decide`` (skip: ``classic_pull_skipped``, then only the calls) -> text pages ->
photo pages -> ``telecom/cch.vcf`` (the last 100 calls) -> ``classic_pull_done``. The pages
are read by ``protocol.pbap.pull.PageReader`` (the UIDs, the owner card, a book changed
mid-pull); which photo pages to ask for is ``protocol.pbap.photos`` (a selector probe,
then only the cards with a photo, when the phone has vCard selecting); this module only
sends the GETs and hands each page to the engine. Any error
raises ``ClassicLinkError`` and the caller reports ``classic_pull_failed``: the engine has
then stored whole pages only, and ``classic_pull_done`` is never called after a failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from carhub.classic import CallEntry, ClassicEvents, ClassicLinkError, PulledPage
from carhub.pbap.obex_link import ObexChannel, ObexRefused
from protocol.contacts import Contact
from protocol.obex import ResponseCode
from protocol.pbap import (
    CALL_SELECTOR,
    NO_PHOTO,
    PHOTO_ONLY,
    BookState,
    Format,
    PbapError,
    decide,
    pages,
    probe,
    pull_phone_book,
)
from protocol.pbap.calls import MAX_CALLS, parse_calls
from protocol.pbap.photos import PhotoPass, photo_clears, photo_pass, photo_probe, photo_reader
from protocol.pbap.pull import MAX_SKIPPED_LOGGED, PageReader

__all__ = ["PullResult", "pull_book"]

log = logging.getLogger("carhub.pbap")

# Photo clears go to the engine in pages of this many (one store transaction each).
CLEAR_PAGE: Final = 500


@dataclass(frozen=True)
class PullResult:
    """How a pull ended: "skipped" or "pulled", the cards read, the seconds it took."""

    outcome: str
    cards: int
    seconds: float


async def pull_book(
    obex: ObexChannel,
    events: ClassicEvents,
    phone_id: str,
    *,
    page_size: int,
    shared_features: int = 0,
) -> PullResult:
    """Run one pull for ``phone_id`` and report it into ``events``.

    ``shared_features``: the PbapSupportedFeatures both the phone's SDP record and the
    car's CONNECT have (vCard selecting there: only the cards with a photo are re-read).

    Raises:
        ClassicLinkError: the pull stopped (the caller reports ``classic_pull_failed``).
    """
    started = time.monotonic()
    previous = events.classic_book_state(phone_id)
    _body, answer = await obex.get(probe())
    if answer.phonebook_size is None:
        raise ClassicLinkError("the phone did not say its phone book size (PhonebookSize)")
    state = BookState.from_probe(answer)
    if decide(previous, answer) == "skip":
        events.classic_pull_skipped(phone_id, state)
        await _pull_calls(obex, events, phone_id, Format.VCARD_30)
        return PullResult("skipped", 0, time.monotonic() - started)
    seen: set[str] = set()
    text = PageReader("contacts", state)
    fmt = await _pull_stage(
        obex, events, phone_id, text, (NO_PHOTO, page_size, None), Format.VCARD_30, seen
    )
    plan = await _photo_pass(obex, phone_id, state, shared_features)
    photos = photo_reader(plan, text)
    shape = (PHOTO_ONLY, page_size, plan.vcard_selector)
    await _pull_stage(obex, events, phone_id, photos, shape, fmt, seen)
    _clear_photos(events, phone_id, photos, photo_clears(seen, photos))
    await _pull_calls(obex, events, phone_id, fmt)
    _report(events.classic_pull_done, phone_id, state if state.counted else None, frozenset(seen))
    return PullResult("pulled", len(seen), time.monotonic() - started)


async def _pull_stage(
    obex: ObexChannel,
    events: ClassicEvents,
    phone_id: str,
    reader: PageReader,
    shape: tuple[int, int, int | None],
    fmt: Format,
    seen: set[str],
) -> Format:
    """Every page of one stage (``shape``: PropertySelector, page size, vCardSelector);
    returns the vCard format the phone accepted."""
    selector, page_size, cards = shape
    windows = pages(reader.probe.size, page_size)
    for index, (offset, count) in enumerate(windows):
        request = pull_phone_book(
            offset=offset, max_count=count, fmt=fmt, selector=selector, vcard_selector=cards
        )
        try:
            body, answer = await obex.get(request)
        except ObexRefused as exc:
            # vCard 3.0 is mandatory for a PBAP PSE, but old phones refuse it: 2.1 then.
            if exc.code != ResponseCode.NOT_ACCEPTABLE or fmt is Format.VCARD_21 or offset:
                raise
            log.info("PBAP %s: the phone refused vCard 3.0; asking for 2.1", phone_id)
            fmt = Format.VCARD_21
            request = pull_phone_book(
                offset=offset, max_count=count, fmt=fmt, selector=selector, vcard_selector=cards
            )
            body, answer = await obex.get(request)
        try:
            read = reader.read(
                body, answer, offset=offset, count=count, last=index == len(windows) - 1
            )
        except PbapError as exc:
            raise ClassicLinkError(exc.detail or str(exc)) from None
        for error in read.skipped[:MAX_SKIPPED_LOGGED]:
            log.info("PBAP %s: card skipped at line %s: %s", phone_id, error.line, error)
        if reader.stage == "contacts":
            seen.update(c.uid for c in read.contacts)
        page = PulledPage(
            stage=read.stage,
            contacts=read.contacts,
            photos=read.photos,
            owner=read.owner,
            skipped=len(read.skipped),
            done=read.done,
            total=read.total,
        )
        _report(events.classic_page, phone_id, page)
    return fmt


async def _photo_pass(
    obex: ObexChannel, phone_id: str, state: BookState, shared_features: int
) -> PhotoPass:
    """Send the selector probe when the phone can select; ``photo_pass`` decides."""
    request = photo_probe(shared_features)
    answer = None
    if request is not None:
        try:
            _body, answer = await obex.get(request)
        except ObexRefused as exc:  # a phone that claims selecting but refuses it
            log.info("PBAP %s: the photo probe was refused (%s); all cards", phone_id, exc)
    try:
        plan = photo_pass(state, answer)
    except PbapError as exc:
        raise ClassicLinkError(exc.detail or str(exc)) from None
    if plan.selected:
        log.info("PBAP %s: %d cards with a photo", phone_id, plan.state.size)
    return plan


def _clear_photos(
    events: ClassicEvents, phone_id: str, reader: PageReader, clears: list[Contact]
) -> None:
    """After a filtered pass: say what was left out; the contacts without a photo card
    lose any photo they had (``clears``)."""
    if reader.left_out:
        log.info(
            "PBAP %s: %d photos left out (a name the book has more than once, with no UID: "
            "the photo could go to the wrong contact)",
            phone_id,
            reader.left_out,
        )
    done = reader.done
    for at in range(0, len(clears), CLEAR_PAGE):  # bounded pages, as the pulled ones
        page = PulledPage("photos", clears[at : at + CLEAR_PAGE], done=done, total=done)
        _report(events.classic_page, phone_id, page)


async def _pull_calls(obex: ObexChannel, events: ClassicEvents, phone_id: str, fmt: Format) -> None:
    """The last 100 calls, in the book's vCard format; best effort: a phone that refuses
    them (no call history object, sharing off, a format it will not give) keeps the old
    list, and the pull still counts as done."""
    request = pull_phone_book(
        "telecom/cch.vcf", max_count=MAX_CALLS, fmt=fmt, selector=CALL_SELECTOR
    )
    try:
        body, _answer = await obex.get(request)
    except ObexRefused as exc:
        if exc.code == ResponseCode.NOT_ACCEPTABLE and fmt is Format.VCARD_30:
            await _pull_calls(obex, events, phone_id, Format.VCARD_21)
            return
        log.info(
            "PBAP %s: no call history from the phone (%s); keeping the last one", phone_id, exc
        )
        return
    history = parse_calls(body)
    if history.skipped:
        log.info("PBAP %s: %d call entries skipped", phone_id, history.skipped)
    calls = [CallEntry(c.name, c.number, c.type, c.date) for c in history.calls]
    _report(events.classic_calls, phone_id, calls)


def _report(method: Callable[..., None], *args: object) -> None:
    """Call an engine method; its failure (the store) stops the pull."""
    try:
        method(*args)
    except Exception as exc:  # StoreError, or any engine failure: nothing half-applied
        raise ClassicLinkError(f"the car could not store the pull: {exc}") from exc
