"""CarHub protocol core: sans-I/O state machines and codecs (no sockets, no asyncio)."""

# Importing the feature modules registers their message types with the codec.
from protocol import media, pairing, session, sync  # noqa: F401
from protocol.errors import ProtocolError, Reason
from protocol.messages import PROTOCOL_VERSION, Message, decode, encode

__all__ = ["PROTOCOL_VERSION", "Message", "ProtocolError", "Reason", "decode", "encode"]
