"""``carhub-capture``: CarHub captures (btsnoop, pcap) decoded down to their messages.

    cli     the typer app: ``carhub-capture decode FILE [--keylog FILE] [--json]``

The decoding itself is sans-I/O, in ``protocol.capture``; this package reads the files and
prints. It imports neither ``carhub`` nor ``phone_bridge``.
"""

from __future__ import annotations

__all__: list[str] = []
