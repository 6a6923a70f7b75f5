"""Cover art named by ``mpris:artUrl``: a local file or an http(s) URL, bounded in size.

``file://`` is read here; ``http://`` and ``https://`` are fetched with httpx (imported only
when a player names such a URL), with a time limit and a byte limit that stops the download
as soon as it is exceeded. A URL that fails (missing, too big, not an image, a server that
says 404 or never answers) is one log line and no artwork: the track still reaches the car.
Each URL is tried once; the result (the image's hash, or "none") is remembered, and only the
last few images are kept, so a player left running for days does not grow us.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections import OrderedDict
from pathlib import Path
from urllib.parse import unquote, urlparse

from protocol.media import Artwork, artwork_of, sniff_image_mime

__all__ = ["MAX_ART_BYTES", "ArtCache"]

log = logging.getLogger("phone_bridge.mpris")

# protocol.media.Artwork must fit one frame; a bigger cover could never be sent.
MAX_ART_BYTES = 1_000_000
HTTP_TIMEOUT = 5.0  # seconds for a whole download
KEEP_IMAGES = 8
KEEP_URLS = 64


class _TooBig(Exception):
    """The image is over ``MAX_ART_BYTES``."""


class ArtCache:
    """Artwork by hash (what the car asks for) and the outcome of each URL tried.

    Args:
        max_bytes: the largest image taken.
        timeout: seconds an http(s) download may take.
    """

    def __init__(self, max_bytes: int = MAX_ART_BYTES, timeout: float = HTTP_TIMEOUT) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.images: OrderedDict[bytes, Artwork] = OrderedDict()
        self._urls: OrderedDict[str, bytes] = OrderedDict()  # b"" = tried, no image

    def known(self, url: str) -> bytes | None:
        """The hash already found for ``url`` (``b""``: it failed), or None if never tried."""
        return self._urls.get(url)

    async def load(self, url: str) -> bytes:
        """Fetch or read the image at ``url`` once; return its hash, or ``b""`` if none.

        Never raises: every failure is logged as one line.
        """
        known = self.known(url)
        if known is not None:
            return known
        try:
            data, mime = await self._fetch(url)
        except TimeoutError:  # an OSError too: first
            log.warning("MPRIS artwork %s not used: no answer in %g s", _short(url), self.timeout)
            return self._remember(url, None)
        except (OSError, _TooBig, ValueError) as exc:
            # An OSError's str() repeats the (maybe long) path: its strerror is enough.
            why = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            log.warning("MPRIS artwork %s not used: %s", _short(url), why or type(exc).__name__)
            return self._remember(url, None)
        except Exception as exc:  # httpx's errors, and whatever a server can provoke
            log.warning("MPRIS artwork %s not used: %s: %s", _short(url), type(exc).__name__, exc)
            return self._remember(url, None)
        return self._remember(url, artwork_of(data, mime))

    def _remember(self, url: str, art: Artwork | None) -> bytes:
        if art is not None:
            self.images[art.hash] = art
            self.images.move_to_end(art.hash)
            while len(self.images) > KEEP_IMAGES:
                self.images.popitem(last=False)
        self._urls[url] = art.hash if art is not None else b""
        while len(self._urls) > KEEP_URLS:
            self._urls.popitem(last=False)
        return self._urls[url]

    async def _fetch(self, url: str) -> tuple[bytes, str]:
        scheme = urlparse(url).scheme.lower()
        if scheme == "file":
            path = Path(unquote(urlparse(url).path))
            data = await asyncio.to_thread(_read_file, path, self.max_bytes)
            # A local file goes to the car only if its bytes are an image: the player, or a
            # stream it plays, names the path, and ~/.ssh/id_ed25519 as "x.png" must not go.
            return data, _image_mime(data, "")
        if scheme in ("http", "https"):
            data, declared = await asyncio.wait_for(self._download(url), self.timeout)
            return data, _image_mime(data, declared)
        raise ValueError(f"unsupported URL scheme {scheme or '(none)'!r}")

    async def _download(self, url: str) -> tuple[bytes, str]:
        import httpx  # only a player naming an http(s) cover needs it

        from phone_bridge.http_body import BodyTooLarge, accept_encoding, read_body

        async with (
            httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as client,
            client.stream("GET", url, headers=accept_encoding(gzip=False)) as resp,
        ):
            if resp.status_code != 200:
                raise ValueError(f"HTTP {resp.status_code}")
            length = resp.headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_bytes:
                raise _TooBig(f"{int(length)} bytes, over the {self.max_bytes}-byte limit")
            # Raw bytes, no content coding: httpx would inflate a zstd chunk in full first.
            try:
                data = await read_body(resp, self.max_bytes, gzip=False)
            except BodyTooLarge:
                raise _TooBig(f"over the {self.max_bytes}-byte limit") from None
            return data, resp.headers.get("content-type", "").split(";")[0]


def _read_file(path: Path, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` of a local regular file (one more byte tells it is too big).

    Opened non-blocking and checked to be a regular file first: a FIFO or a device named as
    a cover would otherwise block this thread (and the track's artwork) forever.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _TooBig(f"over the {max_bytes}-byte limit")
    if not data:
        raise ValueError("empty file")
    return data


def _image_mime(data: bytes, declared: str) -> str:
    """The image's type from its magic bytes; refuse what is not an image.

    Raises:
        ValueError: neither the bytes nor the declared type say image.
    """
    sniffed = sniff_image_mime(data)
    if sniffed is not None:
        return sniffed
    if declared.startswith("image/"):
        return declared
    raise ValueError(f"not an image ({declared or 'unknown type'})")


def _short(url: str) -> str:
    """A URL shortened for a log line (data in a query string can be long)."""
    return url if len(url) <= 120 else url[:117] + "..."
