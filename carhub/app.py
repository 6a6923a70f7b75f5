"""The car's ASGI app, kept at its old address: the routes live in ``carhub.api``."""

from __future__ import annotations

from carhub.api import LOOPBACK_HOSTS, create_app, qr_svg

__all__ = ["LOOPBACK_HOSTS", "create_app", "qr_svg"]
