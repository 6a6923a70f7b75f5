"""The API's error responses, declared once for the routes' ``responses=`` (and /docs).

Every refusal the routes raise is an ``HTTPException``, which FastAPI sends as
``{"detail": "..."}``; ``ErrorBody`` is that shape, so /openapi.json describes each status a
route can answer besides its 200 (and the 422 FastAPI adds for a bad parameter).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["GUARDED", "ErrorBody", "errors"]


class ErrorBody(BaseModel):
    """What every 4xx answer of the API carries."""

    detail: str


def errors(*, image: bool = False, **codes: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry for a route's refusals, e.g. ``errors(e404="no such phone")``.

    Args:
        image: the route answers 200 with an image; its refusals are still JSON (FastAPI
            would file a ``model`` under the route's own media type, so name it outright).
        codes: ``e<status>`` = when the route answers that status.

    Returns:
        FastAPI's ``responses`` mapping, each status with ``ErrorBody`` as its JSON body.
    """
    body: dict[str, Any]
    if image:
        body = {"content": {"application/json": {"schema": {"$ref": _ERROR_REF}}}}
    else:
        body = {"model": ErrorBody}
    return {int(k[1:]): {**body, "description": v} for k, v in codes.items()}


# The component the JSON routes' ``model=ErrorBody`` registers, for the image routes.
_ERROR_REF = "#/components/schemas/ErrorBody"
# SameOriginGuard (carhub.api.guard) answers any route so; include_router adds it to all.
GUARDED = errors(
    image=True, e403="Host header not served, or a cross-origin request that changes state"
)
