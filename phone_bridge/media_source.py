"""The phone's local media library: audio files and playlists turned into ``Track``s.

``load_tracks`` takes a folder or an ``.m3u``/``.m3u8`` playlist, reads each file's tags,
duration and embedded cover art with mutagen, and returns the tracks in order together with
the artwork they reference, keyed by SHA-256 of the image bytes. Artwork shared by several
tracks (one album cover) is stored once, which is what lets the wire send it once per hash.

Bad files never stop the library: each one is skipped with a logged warning. Only when
nothing at all is playable does the caller get a ``MediaSourceError``, whose one-line
message names the path and the skipped files.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mutagen
from mutagen.flac import Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Cover

from phone_bridge.errors import MediaSourceError
from protocol.media import Artwork, Track, sniff_image_mime

__all__ = [
    "AUDIO_SUFFIXES",
    "MAX_ARTWORK_BYTES",
    "PLAYLIST_SUFFIXES",
    "MediaSourceError",
    "load_tracks",
]

log = logging.getLogger(__name__)
_PICTURE: Any = Picture  # mutagen's constructor is untyped

AUDIO_SUFFIXES = frozenset({".mp3", ".m4a", ".mp4", ".aac", ".flac", ".ogg", ".oga", ".opus"})
PLAYLIST_SUFFIXES = frozenset({".m3u", ".m3u8"})
_FRONT_COVER = 3  # ID3/FLAC picture type "Cover (front)"; preferred over other pictures
# protocol.media.Artwork must fit one frame; a bigger cover could never be sent, so drop it.
MAX_ARTWORK_BYTES = 1_000_000


def load_tracks(path: Path) -> tuple[list[Track], dict[bytes, Artwork]]:
    """Read every playable track from a folder or a playlist.

    Args:
        path: a folder (its supported audio files, sorted by name, not recursive) or an
            ``.m3u``/``.m3u8`` playlist (relative entries resolve against its folder).

    Returns:
        The tracks in order and the artwork they reference, keyed by SHA-256 hash.

    Raises:
        MediaSourceError: the path is missing or unreadable, or no file in it is playable.
    """
    files = _list_files(Path(path))
    tracks: list[Track] = []
    artwork: dict[bytes, Artwork] = {}
    skipped: list[tuple[Path, str]] = []
    for file in files:
        try:
            track, art = _read_track(file)
        except _SkipFile as exc:
            log.warning("skipping %s: %s", file, exc)
            skipped.append((file, str(exc)))
            continue
        tracks.append(track)
        if art is not None:
            artwork.setdefault(art.hash, art)
    if not tracks:
        reason = "no playable audio files" if skipped else "no audio files found"
        raise MediaSourceError(Path(path), reason, skipped)
    return tracks, artwork


class _SkipFile(Exception):
    """One file cannot be used; carries a short reason."""


def _list_files(path: Path) -> list[Path]:
    """List the candidate audio files of a folder or a playlist."""
    if path.is_dir():
        return sorted(
            (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES),
            key=lambda p: p.name.casefold(),
        )
    if path.is_file() and path.suffix.lower() in PLAYLIST_SUFFIXES:
        return list(_read_playlist(path))
    if path.is_file():
        raise MediaSourceError(path, "not a folder or an .m3u/.m3u8 playlist")
    raise MediaSourceError(path, "no such file or folder")


def _read_playlist(playlist: Path) -> Iterable[Path]:
    """Yield the entries of an M3U playlist as paths; comments and URLs are dropped."""
    try:
        raw = playlist.read_bytes()
    except OSError as exc:
        raise MediaSourceError(playlist, f"cannot read playlist: {exc.strerror}") from exc
    for line in _decode_playlist(raw).splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue  # #EXTM3U, #EXTINF and other directives carry nothing we need
        if entry.startswith("file://"):
            entry = unquote(urlparse(entry).path)
        elif "://" in entry:
            log.warning("skipping %s: remote playlist entries are not supported", entry)
            continue
        candidate = Path(entry.replace("\\", "/"))  # playlists written on Windows
        yield candidate if candidate.is_absolute() else playlist.parent / candidate


def _decode_playlist(raw: bytes) -> str:
    """Decode playlist bytes: UTF-8 (with or without BOM), else Latin-1 as old .m3u used."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _read_track(file: Path) -> tuple[Track, Artwork | None]:
    """Build one ``Track`` (and its cover, if any) from an audio file."""
    if file.suffix.lower() not in AUDIO_SUFFIXES:
        raise _SkipFile(f"unsupported file type {file.suffix or '(none)'}")
    try:
        audio = mutagen.File(file)
    except (OSError, mutagen.MutagenError) as exc:
        raise _SkipFile(f"unreadable: {exc}") from exc
    except Exception as exc:  # mutagen raises assorted errors on corrupt headers
        raise _SkipFile(f"corrupt: {type(exc).__name__}") from exc
    if audio is None or getattr(audio, "info", None) is None:
        raise _SkipFile("not a recognised audio file")
    duration_ms = round(float(getattr(audio.info, "length", 0.0) or 0.0) * 1000)
    if duration_ms <= 0:
        raise _SkipFile("no audio (zero duration)")
    title, artists, album = _read_text_tags(audio)
    art = _read_artwork(audio)
    track = Track(
        track_id=_track_id(file, title, artists, album),
        title=title or file.stem,
        artists=tuple(artists),
        album=album,
        duration_ms=duration_ms,
        artwork=art.hash if art is not None else b"",
    )
    return track, art


def _read_text_tags(audio: Any) -> tuple[str, list[str], str]:
    """Return (title, artists, album) from ID3, MP4 or Vorbis-comment tags."""
    tags = audio.tags
    if tags is None:
        return "", [], ""
    if isinstance(tags, ID3):
        keys = ("TIT2", "TPE1", "TALB")
    elif _is_mp4(audio):
        keys = ("\xa9nam", "\xa9ART", "\xa9alb")
    else:
        keys = ("title", "artist", "album")
    title, artists, album = (_tag_values(tags, key) for key in keys)
    return " / ".join(title), _split_artists(artists), " / ".join(album)


def _tag_values(tags: Any, key: str) -> list[str]:
    """Return a tag's values as clean strings, or [] when it is absent."""
    try:
        value = tags[key]
    except (KeyError, ValueError):
        return []
    values = getattr(value, "text", value)  # ID3 frames keep their strings in .text
    if isinstance(values, str):
        values = [values]
    return [str(v).strip() for v in values if str(v).strip()]


def _split_artists(values: list[str]) -> list[str]:
    """Split a single "A; B" artist string; keep multi-valued tags as they are."""
    if len(values) == 1 and ";" in values[0]:
        return [part.strip() for part in values[0].split(";") if part.strip()]
    return values


def _is_mp4(audio: Any) -> bool:
    """Tell whether mutagen opened the file as MP4/M4A."""
    return type(audio).__module__.startswith("mutagen.mp4")


def _read_artwork(audio: Any) -> Artwork | None:
    """Return the embedded cover (front cover preferred), or None."""
    found = _embedded_pictures(audio)
    if not found:
        return None
    found.sort(key=lambda item: item[0] != _FRONT_COVER)  # stable: front cover first
    _, data, mime = found[0]
    if len(data) > MAX_ARTWORK_BYTES:
        log.warning(
            "ignoring a %d-byte cover: over the %d-byte limit", len(data), MAX_ARTWORK_BYTES
        )
        return None
    return Artwork(hash=hashlib.sha256(data).digest(), mime=_sniff_mime(data, mime), data=data)


def _embedded_pictures(audio: Any) -> list[tuple[int, bytes, str]]:
    """List (picture type, bytes, declared mime) of every embedded picture."""
    tags: Any = audio.tags  # mutagen is only partly typed; keep ``tags`` un-narrowed
    if isinstance(audio.tags, ID3):
        return [(int(f.type), bytes(f.data), str(f.mime)) for f in tags.getall("APIC")]
    if _is_mp4(audio):
        covers = tags.get("covr", []) if tags is not None else []
        return [(_FRONT_COVER, bytes(c), _mp4_mime(c)) for c in covers]
    pictures = [(int(p.type), bytes(p.data), str(p.mime)) for p in getattr(audio, "pictures", [])]
    if tags is not None and not pictures:
        pictures = [_vorbis_picture(v) for v in _tag_values(tags, "metadata_block_picture")]
        pictures = [p for p in pictures if p[1]]
    return pictures


def _vorbis_picture(encoded: str) -> tuple[int, bytes, str]:
    """Decode an Ogg METADATA_BLOCK_PICTURE value; a broken one yields empty data."""
    try:
        picture: Any = _PICTURE(base64.b64decode(encoded))
    except Exception:  # a bad picture block must not cost us the whole track
        log.warning("ignoring an undecodable METADATA_BLOCK_PICTURE")
        return (0, b"", "")
    return (int(picture.type), bytes(picture.data), str(picture.mime))


def _mp4_mime(cover: Any) -> str:
    """Map an MP4 ``covr`` image format to a MIME type."""
    return (
        "image/png" if getattr(cover, "imageformat", None) == MP4Cover.FORMAT_PNG else "image/jpeg"
    )


def _sniff_mime(data: bytes, declared: str) -> str:
    """Trust the image's magic bytes over the tag's declared MIME type."""
    sniffed = sniff_image_mime(data)
    if sniffed is not None:
        return sniffed
    return declared if declared.startswith("image/") else "application/octet-stream"


def _track_id(file: Path, title: str, artists: list[str], album: str) -> str:
    """Derive a stable id from the file's absolute path and its tags."""
    # The unit separator cannot occur in a path or a tag, so fields never run together.
    key = "\x1f".join([str(file.resolve()), title, "\x1e".join(artists), album])
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
