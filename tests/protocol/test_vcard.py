"""vCard import: one test per quirk file in tests/data/vcard, plus errors and UID rules.

Expected values were written by reading each corpus file by hand, not by running the
importer.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import msgspec
import pytest

from protocol.contacts import Address, Contact, Email, Phone
from protocol.errors import VCardError
from protocol.vcard import ImportResult, import_vcards, looks_like_vcard

CORPUS = Path(__file__).resolve().parent.parent / "data" / "vcard"
# The corpus photo: a JPEG SOI/APP0 marker, bytes 0..255 twice, an EOI marker.
CORPUS_JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2 + b"\xff\xd9"
MARY = Contact(
    uid="",
    fn="Mary O'Neil",
    n=("O'Neil", "Mary", "", "", ""),
    phones=(Phone("+44 7700 900123", "cell"), Phone("+44 20 7946 0000", "", "Office")),
    emails=(Email("mary@example.com", "home"),),
    addresses=(
        Address(
            street="10 Downing St, Flat 2",
            locality="London",
            postcode="SW1A 2AA",
            country="UK",
            type="home",
        ),
    ),
    note="Line one\nLine two; with semicolon\\ and backslash",
)


def load(name: str) -> ImportResult:
    result = import_vcards((CORPUS / name).read_bytes())
    assert result.errors == [], result.errors
    assert result.cards_seen == len(result.contacts) == 1
    return result


def only(name: str) -> Contact:
    """Import a one-card corpus file; return its contact with a derived UID checked and blanked."""
    contact = load(name).contacts[0]
    assert re.fullmatch(r"[0-9a-f]{16}", contact.uid), contact.uid
    return msgspec.structs.replace(contact, uid="")


@pytest.mark.parametrize(
    "name", ["google_30.vcf", "bom_utf8.vcf", "lf_only.vcf", "utf16le_bom.vcf"]
)
def test_mary_in_every_encoding(name: str) -> None:
    assert only(name) == MARY


def test_same_name_same_uid_across_encodings() -> None:
    uids = {load(n).contacts[0].uid for n in ["google_30.vcf", "lf_only.vcf", "utf16le_bom.vcf"]}
    assert len(uids) == 1


def test_android_21_quoted_printable_soft_breaks() -> None:
    assert only("android_21_qp.vcf") == Contact(
        uid="",
        fn="Иван Иванов",
        n=("Иванов", "Иван", "", "", ""),
        phones=(Phone("+7 900 000-00-00", "cell"), Phone("+7 495 000-00-00", "home")),
        emails=(Email("ivan@example.ru", "home"),),
    )


def test_android_21_base64_photo() -> None:
    result = load("android_21_photo_base64.vcf")
    contact = result.contacts[0]
    assert (contact.fn, contact.n) == ("Jane Doe", ("Doe", "Jane", "", "", ""))
    assert contact.phones == (Phone("+15550100003", "cell"),)
    digest = hashlib.sha256(CORPUS_JPEG).digest()
    assert contact.photo == digest
    photo = result.photos[digest]
    assert (photo.mime, photo.data) == ("image/jpeg", CORPUS_JPEG)


def test_cp1251_charset() -> None:
    assert only("cp1251_21.vcf") == Contact(
        uid="",
        fn="Екатерина Иванова",
        n=("Иванова", "Екатерина", "", "", ""),
        phones=(Phone("+79000000001", "cell"),),
    )


def test_latin1_charset_with_and_without_qp() -> None:
    assert only("latin1_21.vcf") == Contact(
        uid="",
        fn="Jürgen Müller",
        n=("Müller", "Jürgen", "", "", ""),
        phones=(Phone("+49301234567", "work"),),
    )


def test_escaped_separators_in_structured_values() -> None:
    assert only("escaping_structured.vcf") == Contact(
        uid="",
        fn="Dr. Robert Smith, Jr. III",
        n=("Smith, Jr.", "Robert;Bob", "", "Dr.", "III"),
        phones=(Phone("+1-555-0100"),),
        addresses=(
            Address(
                extended="Suite 5;Floor 2",
                street="1 Main St, Bldg A",
                locality="Springfield",
                region="IL",
                postcode="62701",
                country="USA",
                type="work",
            ),
        ),
    )


def test_fold_inside_a_multibyte_character_is_rejoined() -> None:
    contact = only("fold_splits_utf8.vcf")
    assert contact.fn == " ".join(["Zoë Ærøskøbing"] * 6)
    assert "\ufffd" not in contact.fn
    assert contact.n == ("", "Zoë", "", "", "")
    assert contact.phones == (Phone("+4512345678"),)


def test_ios_grouped_labels_org_and_photo() -> None:
    result = load("ios_grouped_label.vcf")
    contact = msgspec.structs.replace(result.contacts[0], uid="")
    digest = hashlib.sha256(CORPUS_JPEG).digest()
    assert contact == Contact(
        uid="",
        fn="John Appleseed",
        n=("Appleseed", "John", "", "", ""),
        org="Example, Inc.",
        phones=(
            Phone("+1 (555) 010-0001", "cell", "Mobile"),
            Phone("+1 555 010 0002", "", "Car phone"),
        ),
        addresses=(
            Address(
                street="1 Infinite Loop",
                locality="Cupertino",
                region="CA",
                postcode="95014",
                country="United States",
                type="home",
            ),
        ),
        photo=digest,
    )
    assert result.photos[digest].mime == "image/jpeg"


def test_outlook_21_qp_label_does_not_swallow_lines() -> None:
    assert only("outlook_21.vcf") == Contact(
        uid="",
        fn="Test de Tester (outlook)",
        n=("de Tester", "Test", "", "", "(outlook)"),
        phones=(Phone("(010) 123-4567", "work"),),
        emails=(Email("tester@example.com"),),
        addresses=(
            Address(
                street="Workstreet 99",
                locality="Worktown",
                postcode="1111AA",
                country="Netherlands",
                type="work",
            ),
        ),
    )


def test_pbap_call_history_stub_is_named_by_its_number() -> None:
    assert only("pbap_mch_21.vcf") == Contact(
        uid="", fn="+15550100009", phones=(Phone("+15550100009"),)
    )


def test_pbap_x_bt_uid_is_the_identity() -> None:
    contact = load("pbap_pb_30_uid.vcf").contacts[0]
    assert contact == Contact(
        uid="A1B2C3D4E5F60718293A4B5C6D7E8F90",
        fn="Alice",
        n=("", "Alice", "", "", ""),
        phones=(Phone("+15550100010", "cell"),),
    )


def test_every_corpus_file_is_covered() -> None:
    tested = {
        "google_30.vcf",
        "bom_utf8.vcf",
        "lf_only.vcf",
        "utf16le_bom.vcf",
        "android_21_qp.vcf",
        "android_21_photo_base64.vcf",
        "cp1251_21.vcf",
        "latin1_21.vcf",
        "outlook_21.vcf",
        "escaping_structured.vcf",
        "fold_splits_utf8.vcf",
        "ios_grouped_label.vcf",
        "pbap_mch_21.vcf",
        "pbap_pb_30_uid.vcf",
    }
    assert {p.name for p in CORPUS.glob("*.vcf")} <= tested


def card(fn: str, tel: str = "+1 555 0100", extra: str = "") -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{fn}\r\nTEL;TYPE=CELL:{tel}\r\n{extra}END:VCARD\r\n"


def line_of(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        # The only name does not decode: nothing identifying is left.
        (
            "BEGIN:VCARD\r\nVERSION:2.1\r\nFN;ENCODING=QUOTED-PRINTABLE:Bro=ZZken\r\nEND:VCARD\r\n",
            "BEGIN:VCARD",
        ),
        ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Broken\r\n", "BEGIN:VCARD"),  # no END:VCARD
    ],
)
def test_malformed_card_in_the_middle(bad: str, needle: str) -> None:
    head = card("First") + card("Second")
    text = head + bad + card("Third")
    result = import_vcards(text.encode())
    assert [c.fn for c in result.contacts] == ["First", "Second", "Third"]
    assert result.cards_seen == 4
    assert len(result.errors) == 1
    error = result.errors[0]
    assert isinstance(error, VCardError)
    assert error.line == len(head.splitlines()) + line_of(bad, needle)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world\n", b"\x89PNG\r\n\x1a\n\x00\x00", b"FN:Not a card\r\n", b"\xff\xfe\x00"],
)
def test_non_vcard_input_is_refused_as_a_whole(data: bytes) -> None:
    assert not looks_like_vcard(data)
    result = import_vcards(data)
    assert result.contacts == [] and result.photos == {} and result.cards_seen == 0
    assert [e.line for e in result.errors] == [1]


def test_looks_like_vcard_accepts_bom_utf16_and_leading_blanks() -> None:
    assert looks_like_vcard(b"\r\n  BEGIN:VCARD\r\n")
    assert looks_like_vcard(b"\xef\xbb\xbfbegin:vcard\n")
    assert looks_like_vcard("BEGIN:VCARD\r\nFN:x\r\n".encode("utf-16-be"))  # no BOM


def test_derived_uid_is_stable_and_ignores_phone_changes() -> None:
    first = import_vcards(card("Ann Lee", "+1 111").encode()).contacts[0]
    again = import_vcards(card("Ann Lee", "+1 111").encode()).contacts[0]
    moved = import_vcards(card("ann  lee", "+44 999").encode()).contacts[0]
    other = import_vcards(card("Ann Leigh", "+1 111").encode()).contacts[0]
    assert first.uid == again.uid == moved.uid
    assert other.uid != first.uid


def test_duplicate_names_get_occurrence_suffixes_stable_across_reimports() -> None:
    data = (card("John Smith", "+1") + card("John Smith", "+2") + card("John Smith", "+3")).encode()
    uids = [c.uid for c in import_vcards(data).contacts]
    assert len(set(uids)) == 3
    assert uids[1:] == [f"{uids[0]}-2", f"{uids[0]}-3"]
    assert uids == [c.uid for c in import_vcards(data).contacts]


def test_explicit_uid_wins_over_x_bt_uid() -> None:
    data = card("A", extra="X-BT-UID:BT1\r\nUID:urn:uuid:1234\r\n").encode()
    assert import_vcards(data).contacts[0].uid == "urn:uuid:1234"


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("BDAY:1980-05-01", "1980-05-01"),
        ("BDAY:19800501", "1980-05-01"),
        ("BDAY:1980-05-01T00:00:00Z", "1980-05-01"),
        ("BDAY:--0501", "--05-01"),
        ("BDAY;X-APPLE-OMIT-YEAR=1604:1604-05-01", "--05-01"),
        ("BDAY:1980-13-01", ""),
        ("BDAY:last tuesday", ""),
    ],
)
def test_birthday_to_iso(line: str, want: str) -> None:
    assert import_vcards(card("A", extra=line + "\r\n").encode()).contacts[0].birthday == want


def test_types_labels_and_bare_21_parameters() -> None:
    data = (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nN:Lee;Ann\r\nTEL;CELL;VOICE:1\r\nTEL;WORK;FAX:2\r\n"
        b'TEL;X-Sister:3\r\nTEL;TYPE="home,voice":4\r\nitem9.TEL:5\r\n'
        b"item9.X-ABLabel:_$!<HomeFAX>!$_\r\nEMAIL;INTERNET;PREF:a@b.c\r\nEND:VCARD\r\n"
    )
    contact = import_vcards(data).contacts[0]
    assert contact.fn == "Ann Lee"
    assert contact.phones == (
        Phone("1", "cell"),
        Phone("2", "fax"),
        Phone("3", "", "Sister"),
        Phone("4", "home"),
        Phone("5", "fax", "HomeFAX"),
    )
    assert contact.emails == (Email("a@b.c"),)


def test_vcard4_data_uri_photo_and_tel_uri() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20

    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    data = card("A", extra=f"PHOTO:{uri}\r\nTEL;VALUE=uri:tel:+1-555\r\n").replace(
        "VERSION:3.0", "VERSION:4.0"
    )
    result = import_vcards(data.encode())
    contact = result.contacts[0]
    assert result.photos[contact.photo].data == png
    assert result.photos[contact.photo].mime == "image/png"
    assert contact.phones[-1] == Phone("+1-555")


def test_unindented_21_base64_continuation_and_cr_only_line_endings() -> None:

    blob = base64.b64encode(bytes(range(200))).decode()
    body = "\r".join(
        [
            "BEGIN:VCARD",
            "VERSION:2.1",
            "FN:Old Nokia",
            f"PHOTO;BASE64:{blob[:60]}",
            blob[60:],
            "",
            "END:VCARD",
            "",
        ]
    )
    result = import_vcards(body.encode())
    assert result.errors == []
    assert next(iter(result.photos.values())).data == bytes(range(200))


def test_identical_photos_are_stored_once() -> None:

    photo = "PHOTO;ENCODING=b;TYPE=JPEG:" + base64.b64encode(CORPUS_JPEG).decode() + "\r\n"
    result = import_vcards((card("A", extra=photo) + card("B", extra=photo)).encode())
    assert len(result.photos) == 1
    assert result.contacts[0].photo == result.contacts[1].photo != b""


@pytest.mark.parametrize(
    ("data", "is_vcard"),
    [
        (b"name,phone\nAnn,123\n", False),
        (b"\x89PNG\r\n\x1a\n", False),
        (b"", False),
        (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nEND:VCARD\r\n", True),
        (b"\xef\xbb\xbf\r\n  begin:vcard\r\nFN:Ann\r\nEND:VCARD\r\n", True),  # BOM, blanks, case
    ],
)
def test_import_says_whether_the_file_was_a_vcard_file_at_all(data: bytes, is_vcard: bool) -> None:
    result = import_vcards(data)
    assert result.is_vcard is is_vcard
    if not is_vcard:
        assert (result.contacts, [e.line for e in result.errors]) == ([], [1])
