#!/usr/bin/env python3
"""Generate samples/media: five short tagged tracks with embedded cover art, and a playlist.

Dev-time only; the outputs are committed, so nothing at test or run time needs ffmpeg.
Needs ``ffmpeg`` on PATH (Debian's build has libmp3lame and libvorbis) and mutagen.

    .venv/bin/python scripts/make_sample_media.py [OUT_DIR]

Audio is synthesised here (a short melody per track, mono), encoded by ffmpeg at low
bitrates to keep the whole folder well under 600 KB, then tagged with mutagen: MP3 ID3v2.4
(APIC), M4A (covr), FLAC (PICTURE block) and Ogg Vorbis (METADATA_BLOCK_PICTURE). Tracks 1
and 2 share one album cover byte-for-byte so that artwork de-duplication by hash is visible.
"""

from __future__ import annotations

import base64
import math
import struct
import subprocess
import sys
import tempfile
import wave
import zlib
from dataclasses import dataclass
from pathlib import Path

from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, TALB, TIT2, TPE1, TRCK
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggvorbis import OggVorbis

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000  # Hz; enough for a melody and keeps FLAC (lossless) small
COVER_SIZE = 256


@dataclass(frozen=True)
class Sample:
    """One track to generate."""

    filename: str
    title: str
    artists: tuple[str, ...]
    album: str
    number: int
    seconds: float
    notes: tuple[int, ...]  # MIDI note numbers, looped
    beat: float  # seconds per note
    cover: tuple[int, int, int]  # base RGB colour of the cover
    cover_format: str  # "jpeg" or "png"


SAMPLES = (
    Sample(
        "01 Morning Drive.mp3",
        "Morning Drive",
        ("Aurora Lane",),
        "Open Road",
        1,
        9.0,
        (60, 64, 67, 72, 67, 64),
        0.25,
        (230, 120, 40),
        "jpeg",
    ),
    Sample(
        "02 Night Signal.m4a",
        "Night Signal",
        ("Aurora Lane", "The Relays"),
        "Open Road",
        2,
        10.0,
        (57, 60, 64, 69, 64, 60, 55, 59),
        0.3,
        (230, 120, 40),
        "jpeg",
    ),
    Sample(
        "03 Cafe Lumiere.flac",
        "Café Lumière",
        ("Élise Marchand",),
        "Petites Routes",
        1,
        6.0,
        (65, 69, 72, 69, 70, 67),
        0.35,
        (40, 150, 220),
        "png",
    ),
    Sample(
        "04 Tunnel Echo.ogg",
        "Tunnel Echo",
        ("Static Bloom",),
        "Low Frequencies",
        4,
        12.0,
        (50, 53, 57, 62, 57, 53),
        0.4,
        (60, 190, 110),
        "png",
    ),
    Sample(
        "05 Last Exit.mp3",
        "Last Exit",
        ("Kenji Sato", "Mara Ruiz"),
        "Interchange",
        5,
        7.5,
        (62, 66, 69, 74, 73, 69, 66),
        0.22,
        (170, 70, 200),
        "jpeg",
    ),
)


def main() -> None:
    """Write every sample and the playlist into OUT_DIR (default samples/media)."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "samples" / "media"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for sample in SAMPLES:
            wav = tmp / "tone.wav"
            _write_wav(wav, _melody(sample))
            target = out / sample.filename
            _encode(wav, target)
            _tag(target, sample, _cover(tmp, sample))
    _write_playlist(out)
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {len(SAMPLES)} tracks + playlist to {out} ({total / 1024:.0f} KiB)")


def _melody(sample: Sample) -> list[float]:
    """Synthesise a looping arpeggio with a soft envelope and a bass drone."""
    samples: list[float] = []
    per_note = int(sample.beat * RATE)
    total = int(sample.seconds * RATE)
    bass = 440.0 * 2 ** ((sample.notes[0] - 24 - 69) / 12)
    for i in range(total):
        note = sample.notes[(i // per_note) % len(sample.notes)]
        freq = 440.0 * 2 ** ((note - 69) / 12)
        k = i % per_note
        env = min(1.0, k / 160) * math.exp(-3.0 * k / per_note)  # 10 ms attack, decay
        t = i / RATE
        lead = math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t)
        fade = min(1.0, (total - i) / (RATE * 0.3))  # no click at the end
        samples.append(fade * (0.45 * env * lead + 0.12 * math.sin(2 * math.pi * bass * t)))
    return samples


def _write_wav(path: Path, samples: list[float]) -> None:
    """Write mono 16-bit PCM."""
    frames = b"".join(struct.pack("<h", int(max(-1.0, min(1.0, s)) * 32000)) for s in samples)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)


def _encode(wav: Path, target: Path) -> None:
    """Encode with ffmpeg at a low bitrate, with no tags of ffmpeg's own."""
    codec = {
        ".mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-ar", "22050", "-id3v2_version", "0"],
        ".m4a": ["-c:a", "aac", "-b:a", "32k", "-ar", "22050"],
        ".flac": ["-c:a", "flac", "-compression_level", "8"],
        ".ogg": ["-c:a", "libvorbis", "-q:a", "0", "-ar", "22050"],
    }[target.suffix]
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-i",
        str(wav),
        "-ac",
        "1",
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        *codec,
        str(target),
    ]
    subprocess.run(cmd, check=True)


def _cover(tmp: Path, sample: Sample) -> tuple[bytes, str]:
    """Draw the cover as PNG (pure Python) and convert to JPEG with ffmpeg if asked."""
    png = _draw_png(sample.cover)
    if sample.cover_format == "png":
        return png, "image/png"
    src, dst = tmp / "cover.png", tmp / "cover.jpg"
    src.write_bytes(png)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(src),
            "-q:v",
            "4",
            "-fflags",
            "+bitexact",
            str(dst),
        ],
        check=True,
    )
    return dst.read_bytes(), "image/jpeg"


def _draw_png(rgb: tuple[int, int, int]) -> bytes:
    """A diagonal gradient with a record-like disc, in the given colour."""
    n = COVER_SIZE
    rows = []
    for y in range(n):
        row = bytearray([0])  # filter type None
        for x in range(n):
            shade = 0.55 + 0.45 * (1 - (x + y) / (2 * n))
            r = math.hypot(x - n / 2, y - n / 2)
            if r < n * 0.36:
                shade *= 0.25 if r > n * 0.08 else 1.1
                if n * 0.2 < r < n * 0.21 or n * 0.28 < r < n * 0.29:
                    shade *= 2.2  # grooves
            row += bytes(min(255, int(c * shade)) for c in rgb)
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", n, n, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _tag(target: Path, sample: Sample, cover: tuple[bytes, str]) -> None:
    """Write title, artists, album, track number and the front cover."""
    data, mime = cover
    artists = list(sample.artists)
    if target.suffix == ".mp3":
        id3 = ID3()
        id3.add(TIT2(encoding=3, text=[sample.title]))
        id3.add(TPE1(encoding=3, text=artists))
        id3.add(TALB(encoding=3, text=[sample.album]))
        id3.add(TRCK(encoding=3, text=[str(sample.number)]))
        id3.add(APIC(encoding=3, mime=mime, type=3, desc="Cover", data=data))
        id3.save(target, v2_version=4)
    elif target.suffix == ".m4a":
        mp4 = MP4(target)
        fmt = MP4Cover.FORMAT_PNG if mime == "image/png" else MP4Cover.FORMAT_JPEG
        mp4.tags["\xa9nam"] = [sample.title]
        mp4.tags["\xa9ART"] = artists
        mp4.tags["\xa9alb"] = [sample.album]
        mp4.tags["trkn"] = [(sample.number, len(SAMPLES))]
        mp4.tags["covr"] = [MP4Cover(data, imageformat=fmt)]
        mp4.save()
    else:
        audio = FLAC(target) if target.suffix == ".flac" else OggVorbis(target)
        audio["title"], audio["artist"] = sample.title, artists
        audio["album"], audio["tracknumber"] = sample.album, str(sample.number)
        picture = Picture()
        picture.type, picture.mime, picture.desc, picture.data = 3, mime, "Cover", data
        picture.width = picture.height = COVER_SIZE
        picture.depth = 24
        if isinstance(audio, FLAC):
            audio.add_picture(picture)
        else:
            audio["metadata_block_picture"] = [base64.b64encode(picture.write()).decode()]
        audio.save()


def _write_playlist(out: Path) -> None:
    """An extended M3U in play order, with relative paths."""
    lines = ["#EXTM3U"]
    for s in SAMPLES:
        lines += [f"#EXTINF:{round(s.seconds)},{', '.join(s.artists)} - {s.title}", s.filename]
    (out / "playlist.m3u").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
