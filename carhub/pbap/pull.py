"""One PBAP pull over an open OBEX session, in the order ``carhub.classic`` defines.

probe -> ``decide`` (skip: ``classic_pull_skipped``, then only the calls) -> text pages ->
photo pages -> ``telecom/cch.vcf`` (the last 100 calls) -> ``classic_pull_done``. The pages
are read by ``protocol.pbap.pull.PageReader`` (the UIDs, the owner card, a book changed
mid-pull); this module only sends the GETs and hands each page to the engine. Any error
raises ``ClassicLinkError`` and the caller reports ``classic_pull_failed``: the engine has
then stored whole pages only, and ``classic_pull_done`` is never called after a failure.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final

from carhub.classic import CallEntry, ClassicEvents, ClassicLinkError, PulledPage
from carhub.pbap.obex_link import ObexChannel, ObexRefused
from protocol.obex import ResponseCode
from protocol.pbap import (
    NO_PHOTO,
    PHOTO_ONLY,
    BookState,
    Format,
    PbapError,
    Property,
    decide,
    pages,
    probe,
    pull_phone_book,
)
from protocol.pbap.calls import MAX_CALLS, parse_calls
from protocol.pbap.pull import MAX_SKIPPED_LOGGED, PageReader, Stage

__all__ = ["CALL_SELECTOR", "PullResult", "pull_book"]

log = logging.getLogger("carhub.pbap")

# What a call entry needs: the name, the number and the call's type and time.
CALL_SELECTOR: Final = (
    Property.VERSION | Property.FN | Property.N | Property.TEL | Property.X_IRMC_CALL_DATETIME
)
_STAGES: Final[tuple[tuple[Stage, int], ...]] = (("contacts", NO_PHOTO), ("photos", PHOTO_ONLY))


@dataclass(frozen=True)
class PullResult:
    """How a pull ended: "skipped" or "pulled", the cards read, the seconds it took."""

    outcome: str
    cards: int
    seconds: float


async def pull_book(
    obex: ObexChannel, events: ClassicEvents, phone_id: str, *, page_size: int
) -> PullResult:
    """Run one pull for ``phone_id`` and report it into ``events``.

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
        await _pull_calls(obex, events, phone_id)
        return PullResult("skipped", 0, time.monotonic() - started)
    fmt = Format.VCARD_30
    seen: set[str] = set()
    for stage, selector in _STAGES:
        reader = PageReader(stage, state)
        fmt = await _pull_stage(obex, events, phone_id, reader, (selector, page_size), fmt, seen)
    await _pull_calls(obex, events, phone_id)
    counted = None not in (state.database_id, state.primary, state.secondary)
    _report(events.classic_pull_done, phone_id, state if counted else None, frozenset(seen))
    return PullResult("pulled", len(seen), time.monotonic() - started)


async def _pull_stage(
    obex: ObexChannel,
    events: ClassicEvents,
    phone_id: str,
    reader: PageReader,
    shape: tuple[int, int],
    fmt: Format,
    seen: set[str],
) -> Format:
    """Every page of one stage (``shape``: PropertySelector, page size); returns the vCard
    format the phone accepted."""
    selector, page_size = shape
    windows = pages(reader.probe.size, page_size)
    for index, (offset, count) in enumerate(windows):
        request = pull_phone_book(offset=offset, max_count=count, fmt=fmt, selector=selector)
        try:
            body, answer = await obex.get(request)
        except ObexRefused as exc:
            # vCard 3.0 is mandatory for a PBAP PSE, but old phones refuse it: 2.1 then.
            if exc.code != ResponseCode.NOT_ACCEPTABLE or fmt is Format.VCARD_21 or offset:
                raise
            log.info("PBAP %s: the phone refused vCard 3.0; asking for 2.1", phone_id)
            fmt = Format.VCARD_21
            request = pull_phone_book(offset=offset, max_count=count, fmt=fmt, selector=selector)
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


async def _pull_calls(obex: ObexChannel, events: ClassicEvents, phone_id: str) -> None:
    """The last 100 calls; a phone with no call history object keeps the old list."""
    request = pull_phone_book("telecom/cch.vcf", max_count=MAX_CALLS, selector=CALL_SELECTOR)
    try:
        body, _answer = await obex.get(request)
    except ObexRefused as exc:
        if exc.code not in (ResponseCode.NOT_FOUND, ResponseCode.NOT_IMPLEMENTED):
            raise
        log.info("PBAP %s: the phone has no call history (%s)", phone_id, exc)
        return
    history = parse_calls(body)
    if history.skipped:
        log.info("PBAP %s: %d call entries skipped", phone_id, history.skipped)
    calls = [CallEntry(c.name, c.number, c.type, c.date) for c in history.calls]
    _report(events.classic_calls, phone_id, calls)


def _report(method: object, *args: object) -> None:
    """Call an engine method; its failure (the store) stops the pull."""
    try:
        method(*args)  # type: ignore[operator]
    except Exception as exc:  # StoreError, or any engine failure: nothing half-applied
        raise ClassicLinkError(f"the car could not store the pull: {exc}") from exc
