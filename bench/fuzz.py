"""Fuzz every decoder that takes outside input with mutated inputs, and print figures.

    python -m bench.fuzz [--inputs N] [--quick] [--seed S] [--only NAME]

Per decoder: N inputs (default 10^6; ``--quick`` 20,000), each a valid sample with one to
four random mutations (flips, cuts, splices, repeats) or, one time in ten, random bytes.
An input may be refused only with the decoder's documented error; anything else is a
finding (printed with the input, exit status 1). Printed per decoder: inputs/s, the
slowest input's time, the process's peak RSS after it, beside a same-run baseline,
``msgspec.msgpack.decode`` of the same bytes (errors caught as well).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from protocol.admission import PairingAdmission
from protocol.apple import AppleDataError
from protocol.apple.ams import decode_entity_update
from protocol.apple.ancs import decode_notification_source
from protocol.connection import CarConnection
from protocol.dnssd import TxtRecord, decode_txt, encode_txt
from protocol.errors import FramingError, MessageError, PairingUriError
from protocol.framing import FrameDecoder, encode_frame
from protocol.gatt import decode_info, decode_service_data
from protocol.identity import Identity, PairingUri
from protocol.messages import (
    SUPPORTED_VERSIONS,
    AppCodec,
    Hello,
    Ping,
    decode,
    decode_app,
    encode,
    encode_app,
)
from protocol.obex.packets import ObexDecoder, ObexError
from protocol.pbap.calls import parse_calls
from protocol.pbap.listing import parse_vcard_listing
from protocol.pbap.params import PbapError, decode_app_params
from protocol.vcard import import_vcards

ID = Identity.from_private_bytes(bytes(range(32)))
HELLO = encode(Hello(versions=list(SUPPORTED_VERSIONS), role="phone", device_id=ID.device_id,
                     name="Pixel", intent="pair"))  # fmt: skip
VCARD = (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Doe\r\nN:Doe;Jane;;;\r\n"
         b"TEL;TYPE=CELL:+15550100\r\nEMAIL:jane@example.com\r\nORG:Acme\r\n"
         b"PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQ\r\nEND:VCARD\r\n")  # fmt: skip
CALLS = (b"BEGIN:VCARD\r\nVERSION:2.1\r\nN:Doe;Jane\r\nTEL:+15550100\r\n"
         b"X-IRMC-CALL-DATETIME;MISSED:20240101T120000\r\nEND:VCARD\r\n")  # fmt: skip
LISTING = (b'<?xml version="1.0"?><!DOCTYPE vcard-listing SYSTEM "vcard-listing.dtd">'
           b'<vCard-listing version="1.0"><card handle="0.vcf" name="Doe;Jane"/>'
           b"</vCard-listing>")  # fmt: skip
INFO = (b'{"id":"%s","name":"Car","model":"carhub","version":1,"lan":["10.0.0.2:7800"]}'
        % ID.device_id.encode())  # fmt: skip
TXT = b"\n".join(k + b"=" + v for k, v in encode_txt(
    TxtRecord(id=ID.device_id, name="Car", model="carhub", pairing_open=True)).items())  # fmt: skip


def _frames(data: bytes) -> None:
    dec = FrameDecoder(16 * 1024)
    dec.receive_data(data)
    while dec.next_frame() is not None:
        pass


def _obex(data: bytes) -> None:
    ObexDecoder().feed(data)


def _txt(data: bytes) -> None:
    props: dict[bytes, bytes | None] = {}
    for line in data.split(b"\n")[:32]:
        key, eq, value = line.partition(b"=")
        props[key] = value if eq else None
    decode_txt(props)


def _uri(data: bytes) -> None:
    PairingUri.parse(data.decode("utf-8", "replace"))


def _car(data: bytes) -> None:
    conn = CarConnection(ID, "Car", lookup_peer=lambda _id: None,
                         admission=PairingAdmission(open_=True))  # fmt: skip
    conn.receive_data(data, 0.0)  # never raises: failures are events
    conn.data_to_send()


@dataclass(frozen=True)
class Target:
    name: str
    decode: Callable[[bytes], object]
    seed: bytes
    allowed: tuple[type[BaseException], ...]


TARGETS = [
    Target("frames", _frames, encode_frame(HELLO) * 2, (FramingError,)),
    Target("messages", decode, HELLO, (MessageError,)),
    Target("app-payload", decode_app, encode_app(Ping(nonce=7)), (MessageError,)),
    # Version 2: a fresh stream per input, seeded with a real first piece (codec 2).
    Target("app-payload-v2", lambda d: AppCodec(2).decode(d),
           AppCodec(2).encode(Hello(versions=[2], role="car", device_id=ID.device_id,
                                    name="n" * 128, model="m" * 128)), (MessageError,)),
    Target("car-connection", _car, encode_frame(HELLO), ()),
    Target("pairing-uri", _uri,
           PairingUri.create(ID, "127.0.0.1:7800").to_uri().encode(), (PairingUriError,)),
    Target("vcard", lambda d: import_vcards(d), VCARD * 2, ()),
    Target("gatt-info", decode_info, INFO, (MessageError,)),
    Target("gatt-service-data", decode_service_data, b"\x01\x01" + bytes(4), (MessageError,)),
    Target("mdns-txt", _txt, TXT, (MessageError,)),
    Target("ams-entity-update", decode_entity_update, b"\x02\x01\x00Song title",
           (AppleDataError,)),
    Target("ancs-notification", decode_notification_source, bytes([0, 0, 4, 1, 7, 0, 0, 0]),
           (AppleDataError,)),
    Target("obex", _obex, b"\xa0\x00\x0b\xcb\x00\x00\x00\x01\x49\x00\x03", (ObexError,)),
    Target("pbap-app-params", decode_app_params, b"\x04\x02\x00\x0a\x05\x02\x00\x00",
           (PbapError,)),
    Target("pbap-listing", parse_vcard_listing, LISTING, (PbapError,)),
    Target("pbap-calls", lambda d: parse_calls(d), CALLS, ()),
]  # fmt: skip


def mutate(rng: random.Random, seed: bytes) -> bytes:
    """One to four random edits of ``seed``; one time in ten, random bytes instead."""
    if rng.random() < 0.1:
        return rng.randbytes(rng.randrange(0, 2 * len(seed) + 8))
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op, pos = rng.randrange(5), rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[pos % len(data)] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:
            del data[pos : pos + rng.randint(1, 16)]
        elif op == 3:
            data = data[:pos]
        else:
            data[pos:pos] = data[rng.randrange(len(data) + 1) :][: rng.randint(1, 64)]
    return bytes(data)


def _baseline(data: bytes) -> None:
    try:
        msgspec.msgpack.decode(data)
    except Exception:  # the baseline's own refusals cost what they cost
        pass


def run(target: Target, inputs: int, seed: int) -> tuple[str, bool]:
    rng = random.Random(seed)
    spent = base_spent = slowest = 0.0
    refused = 0
    finding: str | None = None
    clock = time.perf_counter
    for _ in range(inputs):
        data = mutate(rng, target.seed)
        t0 = clock()
        try:
            target.decode(data)
        except target.allowed:
            refused += 1
        except Exception as exc:
            finding = finding or f"{type(exc).__name__}: {exc} on {data!r}"
        t1 = clock()
        _baseline(data)
        t2 = clock()
        spent += t1 - t0
        base_spent += t2 - t1
        slowest = max(slowest, t1 - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = (f"{target.name:<20} {inputs:>9} inputs {inputs / spent:>11,.0f}/s "
            f"(msgspec baseline {inputs / base_spent:>11,.0f}/s)  slowest "
            f"{slowest * 1e3:7.3f} ms  refused {refused / inputs:6.1%}  peak RSS {rss:6.1f} MiB"
            f"  {'FINDING ' + finding[:300] if finding else 'ok'}")  # fmt: skip
    return line, finding is None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per decoder")
    parser.add_argument("--quick", action="store_true", help="20,000 inputs per decoder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", action="append", help="a decoder's name (repeatable)")
    args = parser.parse_args(argv)
    inputs = 20_000 if args.quick else args.inputs
    ok = True
    for target in TARGETS:
        if args.only and target.name not in args.only:
            continue
        line, clean = run(target, inputs, args.seed)
        print(line, flush=True)
        ok &= clean
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
