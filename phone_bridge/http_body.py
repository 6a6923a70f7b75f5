"""Reading an untrusted HTTP answer's body with a byte limit that holds after decoding.

httpx decodes ``Content-Encoding`` (gzip, deflate, br, zstd, and chains of them) one network
chunk at a time, each chunk in full: a 64 KiB chunk of zstd can inflate to gigabytes before
a caller counting ``aiter_bytes`` sees a single byte. So the CardDAV client and the MPRIS
artwork fetcher ask for ``identity`` or ``gzip`` only (``accept_encoding``), read the raw
body, and inflate gzip here with ``max_length``, so memory stays within the limit plus one
chunk whatever the server sends. Any other coding is refused.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = ["BodyRefused", "BodyTooLarge", "accept_encoding", "read_body"]


class BodyRefused(ValueError):
    """The answer's content coding is not one we asked for."""


class BodyTooLarge(ValueError):
    """The answer's body, decoded, is over the limit."""


def accept_encoding(gzip: bool) -> dict[str, str]:
    """The request header that asks for what ``read_body(gzip=...)`` takes."""
    return {"Accept-Encoding": "gzip" if gzip else "identity"}


async def read_body(response: httpx.Response, limit: int, *, gzip: bool = True) -> bytes:
    """Read a streamed response's body, decoded, refusing more than ``limit`` bytes.

    Args:
        response: a response from ``client.stream(...)``, its body not read yet.
        limit: the most bytes taken, after decoding.
        gzip: whether a gzip-coded body is taken (else only identity).

    Returns:
        The decoded body.

    Raises:
        BodyRefused: a content coding other than identity (or gzip, when allowed).
        BodyTooLarge: the decoded body is over ``limit`` bytes.
    """
    codings = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if codings and not (gzip and codings in (["gzip"], ["x-gzip"])):
        raise BodyRefused(f"content coding {', '.join(codings)!r} refused")
    if response.is_stream_consumed:  # built from bytes (a test's transport): httpx decoded it
        if len(response.content) > limit:
            raise BodyTooLarge(f"over {limit:,} bytes")
        return response.content
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 16) if codings else None
    out = bytearray()
    async for raw in response.aiter_raw():
        if inflate is None:
            out += raw
        else:
            try:
                out += inflate.decompress(raw, limit + 1 - len(out))
            except zlib.error as exc:
                raise BodyRefused(f"bad gzip body: {exc}") from exc
            if inflate.unconsumed_tail:  # the output stopped at the limit: more is coming
                raise BodyTooLarge(f"over {limit:,} bytes")
        if len(out) > limit:
            raise BodyTooLarge(f"over {limit:,} bytes")
    return bytes(out)
