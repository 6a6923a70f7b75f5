"""A stable BD_ADDR on the emulated radio: the vendor command Write BD_ADDR.

The radio hands every controller a fresh public address (``radio.air.address_for``), so a
car or phone that restarts, or reconnects to a restarted radio, comes back under another
BR/EDR address. Over LE that is harmless (the car advertises from a static address and an
iPhone from a private one), but a Classic bond is keyed by the BD_ADDR: a restarted phone
would be a stranger to the car, and a restarted car to its phones. Real adapters keep one
address for life; many also take a vendor command to change it. The emulated controller
takes Zephyr's (``Write BD_ADDR``, opcode 0xFC06, the 6 address bytes little-endian), so a
host that keeps its address in its state dir gets it back on every start.

``claim_address`` is the host's side. Call it only on the emulated radio: a real adapter's
vendor commands differ per chip, and 0xFC06 may mean something else there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from bumble import hci
from bumble.controller import Controller

__all__ = [
    "BD_ADDR_FILE",
    "WRITE_BD_ADDR_OPCODE",
    "AddressWriter",
    "claim_address",
    "derived_address",
    "stored_address",
]

log = logging.getLogger(__name__)

BD_ADDR_FILE = "bd_addr"  # an emulated phone's address, in its state dir
WRITE_BD_ADDR_OPCODE = 0xFC06  # OGF 0x3F (vendor), OCF 0x006: Zephyr's Write BD_ADDR
# Chosen addresses start 00:CA:4A, apart from the radio's own 00:CA:48 plan, and like those
# have the two top bits 00, so nobody takes them for random static ones.
_PREFIX = bytes((0x00, 0xCA, 0x4A))


def derived_address(seed: str) -> str:
    """Return a public-looking BD_ADDR made from ``seed`` (a car's device id, say).

    Args:
        seed: any text; the same seed gives the same address.

    Returns:
        ``"00:CA:4A:XX:XX:XX"``.
    """
    tail = hashlib.sha256(seed.encode()).digest()[:3]
    return ":".join(f"{b:02X}" for b in _PREFIX + tail)


def stored_address(path: Path) -> str:
    """Return the BD_ADDR kept in ``path``, creating a random one (0600) the first time."""
    try:
        text = path.read_text().strip()
        hci.Address(text)
        return text
    except (OSError, ValueError):
        pass
    address = derived_address(secrets.token_hex(16))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(address + "\n")
    return address


class AddressWriter(Controller):
    """A virtual controller that takes Write BD_ADDR, unless the address is in use."""

    def on_hci_command_packet(self, command: hci.HCI_Command) -> None:
        """Answer Write BD_ADDR here; everything else as Bumble does."""
        if command.op_code != WRITE_BD_ADDR_OPCODE:
            super().on_hci_command_packet(command)
            return
        status = self._write_bd_addr(bytes(command.parameters))
        self.send_hci_packet(
            hci.HCI_Command_Complete_Event(
                num_hci_command_packets=1,
                command_opcode=command.op_code,
                return_parameters=hci.HCI_StatusReturnParameters(status=status),
            )
        )

    def _write_bd_addr(self, raw: bytes) -> hci.HCI_ErrorCode:
        """Take ``raw`` as this controller's public address, if no other has it."""
        if len(raw) != 6:
            return hci.HCI_ErrorCode.INVALID_COMMAND_PARAMETERS_ERROR
        address = hci.Address(raw, hci.Address.PUBLIC_DEVICE_ADDRESS)
        link: Any = self.link
        others = getattr(link, "controllers", ())
        if any(c is not self and c.public_address == address for c in others):
            log.info("Write BD_ADDR %s refused: another controller has it", address)
            return hci.HCI_ErrorCode.CONNECTION_ALREADY_EXISTS_ERROR
        if self.classic_connections:
            return hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR  # links keyed by the old one
        self.public_address = address
        return hci.HCI_ErrorCode.SUCCESS


async def claim_address(device: Any, address: str) -> bool:
    """Make a powered-on Bumble ``Device``'s controller use ``address`` (emulated radio only).

    Args:
        device: the ``bumble.device.Device``, after ``power_on``.
        address: ``"AA:BB:CC:DD:EE:FF"``.

    Returns:
        True if the controller took it (``device.public_address`` is then ``address``);
        False if it refused (another controller has it) or knows no such command.
    """
    wanted = hci.Address(address, hci.Address.PUBLIC_DEVICE_ADDRESS)
    command = hci.HCI_Command(bytes(wanted), op_code=WRITE_BD_ADDR_OPCODE)
    try:
        response: Any = await device.host.send_command(command, response_timeout=5.0)
    except Exception as exc:  # a controller that never answers: keep its address
        log.warning("cannot set BD_ADDR %s: %s", address, exc)
        return False
    params = response.return_parameters
    status = (
        params if isinstance(params, int)
        else params[0] if isinstance(params, bytes)
        else getattr(params, "status", None)
        if not isinstance(params, hci.HCI_GenericReturnParameters)
        else params.data[0]
    )  # fmt: skip
    if status != hci.HCI_SUCCESS:
        log.warning("the radio refused BD_ADDR %s (status 0x%02X)", address, status or 0)
        return False
    device.public_address = wanted
    return True
