"""The photo pass (protocol.pbap.photos): vCard selecting, the selector probe, the filtered
pages and the repeated-name rule, against the project's own PSE (protocol.pbap.server)."""

from __future__ import annotations

import base64

import pytest

from protocol.obex import GetRequest, ResponseCode
from protocol.pbap import (
    CAR_FEATURES,
    NO_PHOTO,
    PHOTO_ONLY,
    AppParams,
    BookState,
    Feature,
    PbapError,
    PbapGet,
    car_features,
    decode_app_params,
    pages,
    probe,
    pull_phone_book,
)
from protocol.pbap.photos import (
    ambiguous_uids,
    photo_clears,
    photo_pass,
    photo_probe,
    photo_reader,
)
from protocol.pbap.pull import PageReader
from protocol.pbap.server import Book, answer_get

JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(range(48))).decode()
DB = b"\x42" * 16
COUNTER = (7).to_bytes(16, "big")
CAR = car_features(0x21F)


def card(name: str, *, photo: bool = False, uid: str = "") -> bytes:
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{name}", f"N:{name};;;;", "TEL:+15550100"]
    if uid:
        lines.append(f"UID:{uid}")
    if photo:
        lines.append(f"PHOTO;ENCODING=b;TYPE=JPEG:{JPEG}")
    return ("\r\n".join([*lines, "END:VCARD"]) + "\r\n").encode()


def phone(cards: list[bytes]) -> Book:
    return Book((card("Owner"), *cards), database_id=DB, primary=COUNTER, secondary=COUNTER)


def get(book: Book, request: PbapGet, features: int = CAR) -> tuple[bytes, AppParams]:
    answer = answer_get(book, GetRequest(request.name, request.type, request.app_params),
                        features=features)  # fmt: skip
    assert answer.code == ResponseCode.SUCCESS
    return answer.body, decode_app_params(answer.app_params)


def pull(book: Book, features: int = CAR, page_size: int = 100) -> dict[str, object]:
    """The car's pull, sans-I/O, against the PSE: what each step asked and read."""
    _, first = get(book, probe(), features)
    state = BookState.from_probe(first)
    text = PageReader("contacts", state)
    uids: list[str] = []
    for i, (offset, count) in enumerate(windows := pages(state.size, page_size)):
        body, answer = get(book, pull_phone_book(offset=offset, max_count=count), features)
        read = text.read(body, answer, offset=offset, count=count, last=i == len(windows) - 1)
        uids += [c.uid for c in read.contacts]
    request = photo_probe(car_features(features) & features)
    answer = get(book, request, features)[1] if request else None
    plan = photo_pass(state, answer)
    reader = photo_reader(plan, text)
    photos: dict[str, bytes] = {}
    gets: list[AppParams] = []
    for i, (offset, count) in enumerate(windows := pages(plan.state.size, page_size)):
        request = pull_phone_book(offset=offset, max_count=count, selector=PHOTO_ONLY,
                                  vcard_selector=plan.vcard_selector)  # fmt: skip
        gets.append(decode_app_params(request.app_params))
        body, answer = get(book, request, features)
        read = reader.read(body, answer, offset=offset, count=count, last=i == len(windows) - 1)
        photos.update((c.uid, c.photo) for c in read.contacts)
    clears = photo_clears(uids, reader)
    return {"uids": uids, "plan": plan, "gets": gets, "photos": photos,
            "left_out": reader.left_out, "clears": [c.uid for c in clears]}  # fmt: skip


def test_the_car_claims_vcard_selecting_only_to_a_phone_that_has_it() -> None:
    assert car_features(0x21F) == int(CAR_FEATURES) | 0x10 == 0x9F
    assert car_features(0x20F) == int(CAR_FEATURES) == 0x8F
    assert car_features(int(Feature.X_BT_UCI)) == 0x8F  # bit 6 is X-BT-UCI, not selecting
    assert photo_probe(0x8F) is None
    request = photo_probe(0x9F)
    assert request is not None and request.name == "telecom/pb.vcf"
    assert decode_app_params(request.app_params) == AppParams(
        max_list_count=0, vcard_selector=0x08, vcard_selector_operator=0
    )


def test_the_pse_answers_a_selector_probe_with_the_count_of_cards_with_a_photo() -> None:
    book = phone([card(f"C{i}", photo=i in (4, 40, 400)) for i in range(500)])
    request = photo_probe(0x9F)
    assert request is not None
    body, answer = get(book, request)
    assert body == b"" and answer.phonebook_size == 3
    assert (answer.primary_version_counter, answer.database_identifier) == (COUNTER, DB)
    _, plain = get(book, probe())
    assert plain.phonebook_size == 501
    body, _ = get(book, pull_phone_book(max_count=10, selector=PHOTO_ONLY, vcard_selector=8))
    assert body.count(b"BEGIN:VCARD") == 3 and body.count(b"PHOTO") == 3


def test_a_book_without_photos_needs_no_photo_page() -> None:
    result = pull(phone([card(f"C{i}") for i in range(250)]))
    assert result["gets"] == [] and result["photos"] == {}
    plan = result["plan"]
    assert plan.selected and plan.state.size == 0  # type: ignore[attr-defined]
    assert len(result["clears"]) == 250  # type: ignore[arg-type]


def test_three_photos_among_500_are_read_and_matched_to_their_contacts() -> None:
    cards = [card(f"C{i:03d}", photo=i in (0, 250, 499)) for i in range(500)]
    result = pull(phone(cards))
    gets = result["gets"]
    assert gets == [AppParams(max_list_count=3, format=1, property_selector=int(PHOTO_ONLY),
                              vcard_selector=8, vcard_selector_operator=0)]  # fmt: skip
    uids: list[str] = result["uids"]  # type: ignore[assignment]
    photos: dict[str, bytes] = result["photos"]  # type: ignore[assignment]
    assert set(photos) == {uids[0], uids[250], uids[499]} and all(photos.values())
    assert set(result["clears"]) == set(uids) - set(photos)  # type: ignore[arg-type]


def test_a_phone_without_vcard_selecting_gets_the_full_photo_pass() -> None:
    cards = [card(f"C{i:03d}", photo=i == 7) for i in range(250)]
    result = pull(phone(cards), features=0x20F)
    assert not result["plan"].selected  # type: ignore[attr-defined]
    assert [(g.list_start_offset or 0, g.max_list_count) for g in result["gets"]] == [
        (0, 100), (100, 100), (200, 51)
    ]  # type: ignore[attr-defined]  # fmt: skip
    assert all(g.vcard_selector is None for g in result["gets"])  # type: ignore[attr-defined]
    assert len(result["photos"]) == 250 and result["clears"] == []  # type: ignore[arg-type]


def test_a_repeated_name_without_uid_gets_no_photo_and_is_counted() -> None:
    cards = [
        card("John Smith"),
        card("Ann Lee", photo=True),
        card("John Smith", photo=True),  # the second John: uid "<john>-2" in the text pass
        card("Jane Roe", photo=True, uid="jane-1"),
        card("Jane Roe", photo=True, uid="jane-2"),  # same name, own UIDs: not ambiguous
        card("Owner", photo=True),  # named as the owner card: ambiguous too
    ]
    result = pull(phone(cards))
    uids: list[str] = result["uids"]  # type: ignore[assignment]
    photos: dict[str, bytes] = result["photos"]  # type: ignore[assignment]
    assert set(photos) == {uids[1], "jane-1", "jane-2"}
    assert result["left_out"] == 2
    # Neither John nor the owner's namesake is cleared: the car cannot tell which is which.
    assert result["clears"] == []


def test_the_photo_pass_plan() -> None:
    state = BookState(DB, COUNTER, COUNTER, 501)
    assert photo_pass(state, None).state == state and not photo_pass(state, None).selected
    assert not photo_pass(state, AppParams()).selected  # no PhonebookSize: all cards
    answer = AppParams(phonebook_size=3, primary_version_counter=COUNTER)
    plan = photo_pass(state, answer)
    assert plan.selected and plan.state.size == 3 and not plan.owner_first
    assert not photo_pass(state, AppParams(phonebook_size=501)).selected  # selector ignored
    with pytest.raises(PbapError, match="changed during the pull"):
        photo_pass(state, AppParams(phonebook_size=3, primary_version_counter=bytes(16)))


def test_ambiguous_uids_name_every_repeat() -> None:
    assert ambiguous_uids({"a": 3, "b": 1}) == {"a", "a-2", "a-3"}


def test_a_filtered_page_is_read_without_the_owner_split_and_refused_when_cut() -> None:
    state = BookState(None, None, None, 2)
    reader = PageReader("photos", state, owner_first=False)
    body = card("First", photo=True) + card("Second", photo=True)
    read = reader.read(body, AppParams(), offset=0, count=2, last=True)
    assert [c.fn for c in read.contacts] == ["First", "Second"] and read.owner is None
    assert (read.done, read.total) == (2, 2) and len(read.photos) == 1  # one JPEG, shared
    cut = PageReader("photos", state, owner_first=False)
    with pytest.raises(PbapError, match="inside a card"):
        cut.read(body[:-12], AppParams(), offset=0, count=2, last=True)


def test_text_pass_selector_is_unchanged() -> None:
    assert pull_phone_book(max_count=5).app_params == pull_phone_book(
        max_count=5, selector=NO_PHOTO, vcard_selector=None
    ).app_params
