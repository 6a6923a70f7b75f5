"""CarHub protocol core: sans-I/O state machines and codecs (no sockets, no asyncio).

The names below are loaded on first use (PEP 562), not when the package is imported:
``import protocol.errors`` must not cost the whole protocol (msgspec, zstandard, the Noise
and X25519 code, every message type), since ``phone-bridge status`` needs only a few of
them. A message type is registered with the codec when its feature module is imported,
which every user of that type does (``protocol.connection`` imports them all); taking a
name from this package imports all of the feature modules first, as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protocol.errors import ProtocolError, Reason
    from protocol.messages import PROTOCOL_VERSION, Message, decode, encode

__all__ = ["PROTOCOL_VERSION", "Message", "ProtocolError", "Reason", "decode", "encode"]

_HOME = {
    "PROTOCOL_VERSION": "protocol.messages",
    "Message": "protocol.messages",
    "decode": "protocol.messages",
    "encode": "protocol.messages",
    "ProtocolError": "protocol.errors",
    "Reason": "protocol.errors",
}
# Importing the feature modules registers their message types with the codec.
_FEATURES = ("protocol.media", "protocol.pairing", "protocol.session", "protocol.sync")


def __getattr__(name: str) -> Any:
    """Load one of ``__all__`` (and register every message type) on first access."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'protocol' has no attribute {name!r}")
    for feature in _FEATURES:
        importlib.import_module(feature)
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
