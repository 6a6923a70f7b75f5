"""load_tracks on the committed samples/media and on broken inputs."""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import tempfile
from pathlib import Path

import mutagen
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.id3 import APIC, ID3
from mutagen.oggvorbis import OggVorbis

from phone_bridge.media_source import MediaSourceError, load_tracks
from protocol.messages import decode, encode

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "media"
EXPECTED = [
    # (title, artists, album, seconds)
    ("Morning Drive", ("Aurora Lane",), "Open Road", 9.0),
    ("Night Signal", ("Aurora Lane", "The Relays"), "Open Road", 10.0),
    ("Café Lumière", ("Élise Marchand",), "Petites Routes", 6.0),
    ("Tunnel Echo", ("Static Bloom",), "Low Frequencies", 12.0),
    ("Last Exit", ("Kenji Sato", "Mara Ruiz"), "Interchange", 7.5),
]


def _sample(name_start: str) -> Path:
    return next(p for p in SAMPLES.iterdir() if p.name.startswith(name_start))


def test_samples_are_small_and_cover_every_format() -> None:
    suffixes = {p.suffix for p in SAMPLES.iterdir()}
    assert {".mp3", ".m4a", ".flac", ".ogg", ".m3u"} <= suffixes
    assert sum(p.stat().st_size for p in SAMPLES.iterdir()) < 600 * 1024


def test_folder_reads_tags_and_durations_in_name_order() -> None:
    tracks, _ = load_tracks(SAMPLES)
    got = [(t.title, t.artists, t.album) for t in tracks]
    assert got == [(title, artists, album) for title, artists, album, _ in EXPECTED]
    for track, (*_, seconds) in zip(tracks, EXPECTED, strict=True):
        # Lossy encoders pad a few frames, so allow 100 ms.
        assert abs(track.duration_ms - seconds * 1000) <= 100, track.title


def test_embedded_artwork_from_every_format_is_keyed_by_sha256() -> None:
    tracks, artwork = load_tracks(SAMPLES)
    assert all(t.artwork for t in tracks), "every sample has a cover"
    for track in tracks:
        art = artwork[track.artwork]
        assert art.hash == track.artwork == hashlib.sha256(art.data).digest()
        assert art.mime in ("image/png", "image/jpeg")
        magic = b"\x89PNG" if art.mime == "image/png" else b"\xff\xd8"
        assert art.data.startswith(magic)
    # Tracks 1 (MP3) and 2 (M4A) embed the same album cover: stored once.
    assert tracks[0].artwork == tracks[1].artwork
    assert len(artwork) == 4
    assert {artwork[t.artwork].mime for t in tracks} == {"image/png", "image/jpeg"}


def test_playlist_matches_folder_and_ids_are_stable() -> None:
    from_folder, art_folder = load_tracks(SAMPLES)
    from_list, art_list = load_tracks(SAMPLES / "playlist.m3u")
    assert [t.track_id for t in from_list] == [t.track_id for t in from_folder]
    assert art_list.keys() == art_folder.keys()
    again, _ = load_tracks(SAMPLES)
    assert [t.track_id for t in again] == [t.track_id for t in from_folder]
    assert len({t.track_id for t in from_folder}) == len(from_folder)


def test_same_file_at_another_path_gets_another_id(tmp_path: Path) -> None:
    shutil.copy(_sample("01"), tmp_path / "a.mp3")
    shutil.copy(_sample("01"), tmp_path / "b.mp3")
    a, b = load_tracks(tmp_path)[0]
    assert a.title == b.title and a.track_id != b.track_id


def test_playlist_relative_absolute_url_and_windows_entries(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    flac, ogg, mp3 = _sample("03"), _sample("04"), _sample("05")
    shutil.copy(ogg, tmp_path / "tunnel.ogg")
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(mp3, sub / "exit.mp3")
    playlist = lists / "mix.m3u8"
    playlist.write_text(
        "\ufeff#EXTM3U\n"
        "#EXTINF:6,Élise Marchand - Café Lumière\n"
        f"{flac}\n"
        "\n# a comment\n"
        "../tunnel.ogg\r\n"
        "..\\sub\\exit.mp3\n"
        f"file://{(tmp_path / 'tunnel.ogg').as_posix().replace(' ', '%20')}\n"
        "http://radio.example/stream.mp3\n",
        encoding="utf-8",
    )
    tracks, _ = load_tracks(playlist)
    assert [t.title for t in tracks] == ["Café Lumière", "Tunnel Echo", "Last Exit", "Tunnel Echo"]


def test_broken_files_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copy(_sample("04"), tmp_path / "good.ogg")
    (tmp_path / "garbage.mp3").write_bytes(b"\x00not audio at all" * 50)
    (tmp_path / "empty.flac").write_bytes(b"")
    (tmp_path / "truncated.m4a").write_bytes(_sample("02").read_bytes()[:300])
    (tmp_path / "notes.txt").write_text("not listed: wrong suffix")
    with caplog.at_level(logging.WARNING, logger="phone_bridge.media_source"):
        tracks, artwork = load_tracks(tmp_path)
    assert [t.title for t in tracks] == ["Tunnel Echo"]
    assert len(artwork) == 1
    warned = " ".join(r.getMessage() for r in caplog.records)
    for name in ("garbage.mp3", "empty.flac", "truncated.m4a"):
        assert name in warned
    assert "notes.txt" not in warned


def test_nothing_playable_raises_one_line_error_naming_the_files(tmp_path: Path) -> None:
    (tmp_path / "garbage.mp3").write_bytes(b"\xff\xfb" + b"\x00" * 20)
    (tmp_path / "empty.ogg").write_bytes(b"")
    with pytest.raises(MediaSourceError) as info:
        load_tracks(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "no playable audio files" in message
    assert "garbage.mp3" in message and "empty.ogg" in message
    assert {p.name for p, _ in info.value.skipped} == {"garbage.mp3", "empty.ogg"}


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d, "no audio files found"),  # empty folder
        (lambda d: d / "missing", "no such file or folder"),
        (lambda d: _write(d / "cover.jpg", b"\xff\xd8\xff"), "not a folder or an .m3u"),
        (lambda d: _write(d / "gone.m3u", b"#EXTM3U\nnot-here.mp3\n"), "no playable"),
        (lambda d: _write(d / "blank.m3u", b"#EXTM3U\n"), "no audio files found"),
    ],
)
def test_unusable_paths_raise_media_source_error(tmp_path: Path, make, expected: str) -> None:
    with pytest.raises(MediaSourceError, match=expected):
        load_tracks(make(tmp_path))


def test_untagged_file_falls_back_to_its_name(tmp_path: Path) -> None:
    target = tmp_path / "bare tune.mp3"
    shutil.copy(_sample("01"), target)
    mutagen.File(target).delete()
    [track], artwork = load_tracks(tmp_path)
    assert (track.title, track.artists, track.album, track.artwork) == ("bare tune", (), "", b"")
    assert artwork == {}
    assert track.duration_ms > 8000


def test_corrupt_ogg_picture_keeps_the_track(tmp_path: Path) -> None:
    target = tmp_path / "t.ogg"
    shutil.copy(_sample("04"), target)
    ogg = OggVorbis(target)
    ogg["metadata_block_picture"] = [base64.b64encode(b"\x00\x00\x00\x03short").decode()]
    ogg.save()
    [track], artwork = load_tracks(tmp_path)
    assert track.title == "Tunnel Echo" and track.artwork == b"" and artwork == {}


def test_oversized_cover_is_dropped_but_the_track_kept(tmp_path: Path) -> None:
    target = tmp_path / "big.mp3"
    shutil.copy(_sample("01"), target)
    tags = ID3(target)
    tags.delall("APIC")
    tags.add(APIC(encoding=3, mime="image/jpeg", type=3, data=b"\xff\xd8\xff" + b"\0" * 1_000_000))
    tags.save(target)
    [track], artwork = load_tracks(tmp_path)
    assert track.title == "Morning Drive" and track.artwork == b"" and artwork == {}


def test_artwork_can_be_sent_as_a_protocol_message() -> None:
    _, artwork = load_tracks(SAMPLES)
    for art in artwork.values():
        assert decode(encode(art)) == art


def test_latin1_playlist_is_read(tmp_path: Path) -> None:
    shutil.copy(_sample("03"), tmp_path / "café.flac")
    _write(tmp_path / "old.m3u", "#EXTINF:6,x\ncafé.flac\n".encode("latin-1"))
    [track], _ = load_tracks(tmp_path / "old.m3u")
    assert track.title == "Café Lumière"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    suffix=st.sampled_from([".mp3", ".m4a", ".flac", ".ogg", ".opus"]),
    data=st.one_of(
        st.binary(max_size=2000),
        # Mutilated real files reach deeper into each parser than random bytes do.
        st.tuples(
            st.sampled_from(["01", "02", "03", "04"]),
            st.integers(0, 4000),
            st.binary(min_size=1, max_size=64),
        ).map(lambda t: _sample(t[0]).read_bytes()[: t[1]] + t[2]),
    ),
)
def test_garbage_files_never_raise_anything_but_media_source_error(
    suffix: str, data: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"x{suffix}").write_bytes(data)
        try:
            tracks, _ = load_tracks(Path(tmp))
        except MediaSourceError as exc:
            assert "\n" not in str(exc)
        else:
            assert len(tracks) == 1 and tracks[0].duration_ms > 0


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
