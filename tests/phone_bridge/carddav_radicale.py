"""A real Radicale server for the CardDAV tests: a subprocess on a free loopback port.

Its storage folder is written directly (``collection-root/USER/BOOK/`` with
``.Radicale.props`` and one ``.vcf`` per card): one PUT per card is slow, and a file
written there is a change on the server as a client would see it.
"""

from __future__ import annotations

import datetime
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["Radicale", "card", "self_signed_cert", "serving"]


def card(uid: str, fn: str, tel: str = "+4930123", extra: str = "") -> str:
    """A vCard 3.0 with CRLF line ends."""
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{fn}", f"TEL;TYPE=CELL:{tel}"]
    lines += [line for line in extra.split("\n") if line]
    return "\r\n".join([*lines, "END:VCARD"]) + "\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_cert(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write a self-signed certificate for ``host`` and its key; return (cert, key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "carhub test CardDAV")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Radicale:
    """A Radicale subprocess with htpasswd (plain) users and one address book per user."""

    root: Path
    users: dict[str, str] = field(default_factory=lambda: {"alice": "secret"})
    tls: tuple[Path, Path] | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def book_url(self, user: str = "alice", book: str = "book") -> str:
        return f"{self.base}/{user}/{book}/"

    def book(self, user: str = "alice", book: str = "book") -> Path:
        """The storage folder of ``user``'s address book ``book`` (created if missing)."""
        folder = self.root / "store" / "collection-root" / user / book
        if not folder.exists():
            folder.mkdir(parents=True)
            props = {"tag": "VADDRESSBOOK", "D:displayname": book}
            (folder / ".Radicale.props").write_text(json.dumps(props))
        return folder

    def write(self, name: str, text: str, user: str = "alice", book: str = "book") -> None:
        """Write (add or change) one card in the storage folder, as the server's own."""
        path = self.book(user, book) / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, newline="")
        tmp.replace(path)

    def delete(self, name: str, user: str = "alice", book: str = "book") -> None:
        (self.book(user, book) / name).unlink()

    def start(self, timeout: float = 20.0) -> Radicale:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        users = self.root / "users"
        users.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
        tls = ""
        if self.tls:
            tls = f"ssl = True\ncertificate = {self.tls[0]}\nkey = {self.tls[1]}\n"
        config = self.root / "config"
        config.write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n{tls}"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {users}\nhtpasswd_encryption = plain\n"
            f"[storage]\nfilesystem_folder = {self.root / 'store'}\n"
            "[rights]\ntype = owner_only\n[logging]\nlevel = warning\n"
        )
        log = (self.root / "radicale.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"radicale exited: {self.log()}")
            try:
                httpx.get(self.base + "/.web/", verify=False, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"radicale did not start: {self.log()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: this one process only."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """The server goes away at once (SIGKILL)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def log(self) -> str:
        path = self.root / "radicale.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wipe(self) -> None:
        shutil.rmtree(self.root / "store", ignore_errors=True)


@contextmanager
def serving(
    root: Path, cards: Mapping[str, str], tls: tuple[Path, Path] | None = None
) -> Iterator[Radicale]:
    """A started Radicale under ``root`` whose book holds ``cards`` (file name: vCard),
    stopped when the block ends."""
    server = Radicale(root, tls=tls)
    for name, text in cards.items():
        server.write(name, text)
    server.start()
    try:
        yield server
    finally:
        server.stop()
