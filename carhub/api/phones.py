"""``/api/phones/...``: paired phones, their contacts and their album artwork."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Response

from carhub.api.deps import EngineDep
from carhub.api.responses import errors
from carhub.engine import Engine
from carhub.views import CallItem, ContactItem, ContactPage, Phone

__all__ = ["router"]

router = APIRouter()
_NO_PHONE = errors(e404="no such paired phone")


@router.get("/api/phones", response_model=list[Phone])
async def phones(engine: EngineDep) -> list[Phone]:
    """Paired phones. `profiles`: ["carhub"], or what a Bluetooth phone offers of "ams",
    "ancs" (Apple, LE) and "pbap" (Classic; `transport` "classic" while connected): one
    entry per address. `owner`: the name on the phone's own card, null when unknown."""
    return engine.phones()


@router.delete("/api/phones/{phone_id}", responses=_NO_PHONE)
async def unpair(phone_id: str, engine: EngineDep) -> dict[str, bool]:
    """Unpair the phone and erase its keys, contacts, media and artwork.

    For an Apple-profile phone: its Bluetooth bond, notifications and now playing; for a
    Classic (PBAP) phone: its link key, phone book mirror and recent calls.
    """
    if not engine.unpair(phone_id):
        raise HTTPException(404, f"no paired phone {phone_id}")
    return {"ok": True}


@router.get("/api/phones/{phone_id}/contacts", response_model=ContactPage, responses=_NO_PHONE)
async def contacts(
    phone_id: str,
    engine: EngineDep,
    q: str = "",
    limit: int = Query(50, ge=0, le=1000),
    offset: int = Query(0, ge=0),
) -> ContactPage:
    """One page of the phone's contacts by name; `q` searches names, numbers, e-mail, org."""
    # An Apple-profile phone shares no contacts: its page is empty, not missing.
    _known(engine, phone_id)
    total, items = engine.store.contacts(phone_id, q=q, limit=limit, offset=offset)
    return ContactPage(total=total, items=[ContactItem.from_contact(c) for c in items])


@router.get("/api/phones/{phone_id}/calls", response_model=list[CallItem], responses=_NO_PHONE)
async def calls(phone_id: str, engine: EngineDep) -> list[CallItem]:
    """A Classic phone's recent calls (its last 100, newest first); [] for other phones.

    `type` is "incoming", "outgoing" or "missed"; `date` ISO 8601 local time, or "".
    """
    _known(engine, phone_id)
    return [
        CallItem(name=c.name, number=c.number, type=c.type, date=c.date)
        for c in engine.classic.store.calls(phone_id)
    ]


def _known(engine: Engine, phone_id: str) -> None:
    """404 unless the phone is paired (CarHub) or bonded (Apple-profile or Classic)."""
    if (
        engine.store.pinned_key(phone_id) is None
        and not engine.apple_is_bonded(phone_id)
        and not engine.classic_is_bonded(phone_id)
    ):
        raise HTTPException(404, f"no paired phone {phone_id}")


@router.get(
    "/api/phones/{phone_id}/artwork/{art_hash}",
    response_class=Response,
    responses={
        200: {
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The artwork, in the image type the phone sent",
        },
        **errors(image=True, e400="the artwork hash is not hex", e404="no such phone or artwork"),
    },
)
async def artwork(phone_id: str, art_hash: str, engine: EngineDep) -> Response:
    try:
        raw = bytes.fromhex(art_hash)
    except ValueError:
        raise HTTPException(400, "artwork hash must be hex") from None
    found = engine.store.artwork(phone_id, raw)
    if found is None:
        raise HTTPException(404, "no such artwork")
    mime, data = found
    # Content-addressed, so it never changes; never sniffed or run as anything else.
    return Response(
        data,
        media_type=mime,
        headers={
            "Cache-Control": "max-age=31536000",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
