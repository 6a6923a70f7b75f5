"""How a route reaches the running car: ``EngineDep``, from ``app.state.engine``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from carhub.engine import Engine

__all__ = ["EngineDep", "get_engine"]


def get_engine(conn: HTTPConnection) -> Engine:
    """Return the engine ``create_app`` put on the app (HTTP and WebSocket routes alike).

    Args:
        conn: the request or WebSocket being served.

    Returns:
        The running car.
    """
    engine: Engine = conn.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]
