"""The phone's error tree: every class's exit code, the mapping table, and the CLI's report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer

import phone_bridge.errors as errors
from phone_bridge.cli.app import run_flow
from phone_bridge.errors import (
    BadInput,
    BridgeError,
    CarNotFound,
    CarTimedOut,
    CarUnreachable,
    CredentialsRefused,
    LinkClosed,
    MediaSourceError,
    NotPaired,
    PairingFailed,
    ProtocolFailure,
    SourceUnavailable,
    StateError,
    explain,
)
from protocol.errors import (
    LocalProtocolError,
    MessageError,
    PairingError,
    Reason,
    SessionError,
    SyncError,
)
from shell.errors import KeyFileError, TransportError

README = Path(__file__).resolve().parents[2] / "README.md"


# -- the tree ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (BridgeError, 1),
        (BadInput, 2),
        (CarNotFound, 3),
        (CarUnreachable, 3),
        (PairingFailed, 4),
        (NotPaired, 5),
        (LinkClosed, 1),
        (CarTimedOut, 1),
        (ProtocolFailure, 1),
        (StateError, 1),
        (CredentialsRefused, 8),
        (SourceUnavailable, 1),
    ],
)
def test_each_class_carries_its_exit_code(cls: type[BridgeError], code: int) -> None:
    err = cls("one line")
    assert isinstance(err, BridgeError)
    assert err.code == code and str(err) == "one line"


def test_an_explicit_code_overrides_the_class_code() -> None:
    assert BridgeError("x", errors.EXIT_NOT_PAIRED).code == 5
    assert BridgeError("x").code == 1
    assert BridgeError.code == 1  # the override is per instance, not on the class


def test_media_source_error_is_bad_input_and_a_value_error(tmp_path: Path) -> None:
    skipped = [(tmp_path / f"{i}.mp3", "corrupt") for i in range(7)]
    err = MediaSourceError(tmp_path, "nothing playable", skipped)
    assert isinstance(err, BadInput) and isinstance(err, ValueError)
    assert err.code == 2 and err.path == tmp_path and err.reason == "nothing playable"
    assert str(err) == (
        f"{tmp_path}: nothing playable; skipped: 0.mp3, 1.mp3, 2.mp3, 3.mp3, 4.mp3 (+2 more)"
    )
    assert str(MediaSourceError(tmp_path, "no such file or folder")) == (
        f"{tmp_path}: no such file or folder"
    )


def test_exit_codes_are_the_readme_table() -> None:
    rows = re.findall(r"^\| (\d) \| ", README.read_text(), flags=re.M)
    constants = {getattr(errors, name) for name in errors.__all__ if name.startswith("EXIT_")}
    assert sorted(int(r) for r in rows) == sorted(constants) == list(range(9))


def test_the_names_stay_importable_where_they_were() -> None:
    import phone_bridge.client
    import phone_bridge.connect
    import phone_bridge.engine
    import phone_bridge.media_source
    import phone_bridge.state

    assert phone_bridge.connect.CarNotFound is CarNotFound
    assert phone_bridge.client.LinkClosed is LinkClosed
    assert phone_bridge.state.StateError is StateError
    assert phone_bridge.media_source.MediaSourceError is MediaSourceError
    assert phone_bridge.engine.BridgeError is BridgeError
    assert phone_bridge.engine.explain is explain
    assert phone_bridge.engine.EXIT_PAIRING == errors.EXIT_PAIRING


# -- the mapping table ------------------------------------------------------------------
_REFUSED = (
    "the car refused the scanned code (already used, replaced, expired, or no code is "
    "showing); show a new code on the car and scan it again"
)
_UNKNOWN_TO_CAR = (
    "the car refused the session: it does not know this phone or its key "
    "(unpaired on the car?); run 'pair' again"
)
CASES: list[tuple[BaseException, type[BridgeError], int, str]] = [
    (PairingError(Reason.REJECTED), PairingFailed, 4, "pairing was rejected"),
    (
        PairingError(Reason.PAIRING_CLOSED),
        PairingFailed,
        4,
        "the car's pairing window is closed; open it on the car and retry",
    ),
    (
        PairingError(Reason.COMMITMENT_MISMATCH, "x"),
        PairingFailed,
        4,
        "pairing aborted: the car's nonce did not match its commitment "
        "(possible man in the middle)",
    ),
    (
        PairingError(Reason.CODE_MISMATCH),
        PairingFailed,
        4,
        "the codes did not match; pairing aborted",
    ),
    (
        PairingError(Reason.CONFIRMATION_FAILED),
        PairingFailed,
        4,
        "key confirmation failed (codes differ: possible man in the middle); pairing aborted",
    ),
    (PairingError(Reason.TIMEOUT), PairingFailed, 4, "pairing timed out"),
    (
        PairingError(Reason.RATE_LIMITED),
        PairingFailed,
        4,
        "too many failed pairing attempts on this car; wait and retry (the car backs off for "
        "up to 15 minutes)",
    ),
    (
        PairingError(Reason.OOB_MISMATCH, "key"),
        PairingFailed,
        4,
        "the car's key does not match the scanned code; pairing aborted "
        "(a different car, or a tampered code)",
    ),
    (PairingError(Reason.OOB_MISMATCH, from_peer=True), PairingFailed, 4, _REFUSED),
    (
        # Before the session the car sends the reason only (PROTOCOL.md 3.2): the phone
        # says it in words.
        PairingError(Reason.PAIRING_BUSY, "peer closed", from_peer=True),
        PairingFailed,
        4,
        "another phone is pairing with the car; retry shortly",
    ),
    # A reason with no sentence of its own keeps the protocol's words.
    (
        PairingError(Reason.ID_MISMATCH, "peer closed", from_peer=True),
        PairingFailed,
        4,
        "id-mismatch: peer closed",
    ),
    (
        # A car refuses an unknown phone as it refuses a wrong key (PROTOCOL.md 6.1).
        SessionError(Reason.HANDSHAKE_FAILED, from_peer=True),
        NotPaired,
        5,
        _UNKNOWN_TO_CAR,
    ),
    (SessionError(Reason.UNKNOWN_PEER, "who?", from_peer=True), NotPaired, 5, _UNKNOWN_TO_CAR),
    # The phone's own handshake failure is not the car refusing it.
    (
        SessionError(Reason.HANDSHAKE_FAILED, "bad tag"),
        ProtocolFailure,
        1,
        "protocol error: handshake-failed: bad tag",
    ),
    (
        # The car that answered is not one this phone paired with (ours, not the car's).
        SessionError(Reason.UNKNOWN_PEER, "car 0123456789abcdef is not paired with this phone"),
        NotPaired,
        5,
        "car 0123456789abcdef is not paired with this phone; run 'pair' first",
    ),
    (SessionError(Reason.TAMPERED, "mac"), ProtocolFailure, 1, "protocol error: tampered: mac"),
    (MessageError(Reason.MALFORMED), ProtocolFailure, 1, "protocol error: malformed"),
    (SyncError(Reason.BAD_BATCH, "order"), ProtocolFailure, 1, "protocol error: bad-batch: order"),
    (
        LocalProtocolError(Reason.STATE, "too soon"),
        ProtocolFailure,
        1,
        "protocol error: invalid-state: too soon",
    ),
    (
        TransportError("cannot reach the car at h:1: connection refused"),
        CarUnreachable,
        3,
        "cannot reach the car at h:1: connection refused",
    ),
    (
        KeyFileError("/s/phone.key is mode 644; it must be 0600"),
        StateError,
        1,
        "KeyFileError: /s/phone.key is mode 644; it must be 0600",
    ),
    (TimeoutError(), CarTimedOut, 1, "the car stopped answering (timed out)"),
    # Not in the table: one line naming the type, exit 1.
    (ValueError("bad"), BridgeError, 1, "ValueError: bad"),
    (ConnectionError("BLE link closed"), BridgeError, 1, "ConnectionError: BLE link closed"),
]


@pytest.mark.parametrize(("exc", "cls", "code", "message"), CASES)
def test_explain_maps_foreign_errors(
    exc: BaseException, cls: type[BridgeError], code: int, message: str
) -> None:
    err = explain(exc)
    assert type(err) is cls
    assert err.code == code
    assert str(err) == message


@pytest.mark.parametrize(
    "err",
    [
        CarNotFound("car 'x' not found over mDNS within 3 s"),
        LinkClosed("the car closed the session: bye"),
        StateError("cannot read cars.json"),
        NotPaired("not paired with h:1; run 'pair' first"),
        BadInput("x is not a vCard file; nothing was synced"),
    ],
)
def test_explain_passes_the_phones_own_errors_through(err: BridgeError) -> None:
    assert explain(err) is err


def test_the_table_rows_are_foreign_types_only() -> None:
    for kind, _, _ in errors.FOREIGN_ERRORS:
        assert not issubclass(kind, BridgeError), kind


# -- what the CLI reports for each ------------------------------------------------------
@pytest.mark.parametrize(("exc", "cls", "code", "message"), CASES)
@pytest.mark.parametrize("as_json", [False, True])
def test_the_cli_reports_one_line_and_the_exit_code(
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    cls: type[BridgeError],
    code: int,
    message: str,
    as_json: bool,
) -> None:
    async def flow() -> None:
        raise exc

    with pytest.raises(typer.Exit) as caught:
        run_flow(flow(), as_json)
    assert caught.value.exit_code == code
    out, err = capsys.readouterr()
    assert err == f"phone-bridge: error: {message}\n"
    if as_json:
        assert json.loads(out) == {"ok": False, "error": message, "exit_code": code}
    else:
        assert out == ""


def test_the_cli_passes_a_finished_flow_through() -> None:
    async def flow() -> int:
        return 7

    assert run_flow(flow(), as_json=False) == 7
