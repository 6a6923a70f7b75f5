"""``/api/status``: the car itself."""

from __future__ import annotations

from fastapi import APIRouter

from carhub.api.deps import EngineDep
from carhub.views import Status

__all__ = ["router"]

router = APIRouter()


@router.get("/api/status", response_model=Status)
async def status(engine: EngineDep) -> Status:
    return engine.status()
