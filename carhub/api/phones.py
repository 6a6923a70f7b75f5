"""``/api/phones/...``: paired phones, their contacts and their album artwork."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Response

from carhub.api.deps import EngineDep
from carhub.api.responses import errors
from carhub.views import ContactItem, ContactPage, Phone

__all__ = ["router"]

router = APIRouter()
_NO_PHONE = errors(e404="no such paired phone")


@router.get("/api/phones", response_model=list[Phone])
async def phones(engine: EngineDep) -> list[Phone]:
    return engine.phones()


@router.delete("/api/phones/{phone_id}", responses=_NO_PHONE)
async def unpair(phone_id: str, engine: EngineDep) -> dict[str, bool]:
    """Unpair the phone and erase its keys, contacts, media and artwork.

    For an Apple-profile phone: its Bluetooth bond, notifications and now playing.
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
    # An Apple-profile phone shares no contacts: its page is empty, not missing.
    if engine.store.pinned_key(phone_id) is None and not engine.apple_is_bonded(phone_id):
        raise HTTPException(404, f"no paired phone {phone_id}")
    total, items = engine.store.contacts(phone_id, q=q, limit=limit, offset=offset)
    return ContactPage(total=total, items=[ContactItem.from_contact(c) for c in items])


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
