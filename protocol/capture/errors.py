"""The capture reader's one error: the file is not a capture it can read, or is cut short.

    CaptureError        not btsnoop/pcap/pcapng, an unsupported link type, or truncated

It carries a one-line message for the user; what was decoded before it still counts.
"""

from __future__ import annotations

__all__ = ["CaptureError"]


class CaptureError(ValueError):
    """A capture file cannot be read (any further); ``str()`` is one line for the user."""
