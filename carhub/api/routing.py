"""Routing the API and the dashboard's files apart, and a truthful 405.

The dashboard's static files are mounted at ``/``, which matches every path; Starlette then
never reaches a route that matched the path but not the method, so ``PUT /api/status`` got
the file server's 405 (``Allow: GET, HEAD``) and ``GET /api/pairing/open`` its 404.
``UiMount`` leaves ``/api/...`` to the API, and ``method_not_allowed`` lists in ``Allow``
every method some route serves at that path.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount
from starlette.types import Scope

__all__ = ["API_PREFIX", "UiMount", "method_not_allowed"]

API_PREFIX = "/api/"
# The methods a 405 may name, in the order it names them.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class UiMount(Mount):
    """A ``Mount`` that never takes a path under ``/api/`` (the API's own namespace)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if path == API_PREFIX.rstrip("/") or path.startswith(API_PREFIX):
            return Match.NONE, {}
        return super().matches(scope)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """Answer an ``HTTPException``; a 405's ``Allow`` names every method of the path.

    Starlette's own 405 names the methods of the first route that matched the path only.
    """
    assert isinstance(exc, HTTPException)
    # Nothing but the file server at a path: its own Allow (GET, HEAD) is the truth there.
    if exc.status_code == 405 and (allowed := _allowed(request)):
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, exc)


def _allowed(request: Request) -> list[str]:
    """The methods some route (not the dashboard's files) fully serves at this path."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]
