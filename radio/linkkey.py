"""Authentication with a stored link key: HCI Link Key Request on Bumble's virtual controller.

Theory of operation: Bumble 0.0.236's controller answers HCI_Authentication_Requested
with straight SSP (IO Capability Request), so a bonded phone would be asked for a new
code on every reconnect. A real controller first asks its host for the stored key, then
runs LMP's challenge-response; ``LinkKeyController`` emulates that:

1. Initiator: Authentication_Requested -> HCI Link_Key_Request to its host.
   A negative reply starts SSP, as Bumble does today (and as real controllers do).
2. With a key, LMP_au_rand (a random challenge) goes to the peer controller, which sends
   HCI Link_Key_Request to *its* host. A negative reply there answers LMP_not_accepted
   with PIN or Key Missing (0x06): both hosts get Authentication Complete 0x06 and the
   initiator's host should forget its key and authenticate again (SSP).
3. The peer answers LMP_sres = H(key, challenge, its address) and the initiator compares:
   equal -> Authentication Complete success on both sides, with no SSP and no new Link Key
   Notification; different -> Authentication Failure (0x05) on both sides.

H is HMAC-SHA-256 truncated to 4 bytes, a stand-in for the spec's SAFER+ based E1: the
key never crosses the emulated air, only whether both hosts hold the same one. Both hosts
get Authentication Complete (a real responder's host does not) because Bumble's SSP
emulation does the same, and hosts on the radio rely on it. A side that waits longer
than ``lmp_response_timeout`` (the spec's 30 s) reports LMP Response Timeout (0x22).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import secrets
from typing import Any

from bumble import hci, lmp

from radio.classic import ClassicController

__all__ = ["LinkKeyController", "LmpSres", "sres"]

log = logging.getLogger(__name__)

_Err = hci.HCI_ErrorCode
_Result = hci.HCI_StatusAndAddressReturnParameters


@dataclasses.dataclass
class LmpSres(lmp.Packet):
    """LMP_sres, which Bumble's ``lmp`` lacks: the claimant's answer to LMP_au_rand."""

    opcode = lmp.Opcode.LMP_SRES
    authentication_response: bytes = b""


def sres(link_key: bytes, challenge: bytes, claimant: hci.Address) -> bytes:
    """Return the 4-byte signed response of ``claimant`` to ``challenge`` under ``link_key``."""
    return hmac.new(link_key, challenge + bytes(claimant), hashlib.sha256).digest()[:4]


@dataclasses.dataclass
class _Auth:
    """One authentication in progress on one ACL."""

    initiator: bool
    challenge: bytes = b""
    key: bytes | None = None
    timer: asyncio.TimerHandle | None = None


class LinkKeyController(ClassicController):
    """A controller that authenticates with the hosts' stored link key before SSP."""

    lmp_response_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._auth: dict[hci.Address, _Auth] = {}

    def on_hci_authentication_requested_command(self, command: Any) -> None:
        """Ask the host for the link key of the peer before any pairing.

        Args:
            command: the HCI_Authentication_Requested command.
        """
        connection = self.find_classic_connection_by_handle(command.connection_handle)
        if connection is None:
            super().on_hci_authentication_requested_command(command)
            return
        if connection.peer_address in self._auth:
            self._send_hci_command_status(_Err.COMMAND_DISALLOWED_ERROR, command.op_code)
            return
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        self._begin(connection.peer_address, _Auth(initiator=True))

    def on_hci_link_key_request_reply_command(self, command: Any) -> _Result:
        """Use the host's key: challenge the peer, or answer the peer's challenge.

        Args:
            command: the HCI_Link_Key_Request_Reply command.

        Returns:
            The Command Complete parameters (Command Disallowed when nothing asked).
        """
        peer = command.bd_addr
        auth = self._auth.get(peer)
        if auth is None or auth.key is not None:
            return _Result(status=_Err.COMMAND_DISALLOWED_ERROR, bd_addr=peer)
        auth.key = bytes(command.link_key)
        if auth.initiator:
            auth.challenge = secrets.token_bytes(16)
            self.send_lmp_packet(peer, lmp.LmpAuRand(random_number=auth.challenge))
        else:
            answer = sres(auth.key, auth.challenge, self.public_address)
            self.send_lmp_packet(peer, LmpSres(authentication_response=answer))
        return _Result(status=_Err.SUCCESS, bd_addr=peer)

    def on_hci_link_key_request_negative_reply_command(self, command: Any) -> _Result:
        """No stored key: pair (initiator), or tell the challenger the key is missing.

        Args:
            command: the HCI_Link_Key_Request_Negative_Reply command.

        Returns:
            The Command Complete parameters.
        """
        peer = command.bd_addr
        auth = self._auth.get(peer)
        if auth is None or auth.key is not None:
            return _Result(status=_Err.COMMAND_DISALLOWED_ERROR, bd_addr=peer)
        self._finish(peer)
        if auth.initiator:
            # Bumble's own handler starts SSP with the IO Capability Request.
            return super().on_hci_link_key_request_negative_reply_command(command)
        missing = _Err.PIN_OR_KEY_MISSING_ERROR
        self.send_lmp_packet(peer, lmp.LmpNotAccepted(lmp.Opcode.LMP_AU_RAND, missing))
        self._complete(peer, missing)
        return _Result(status=_Err.SUCCESS, bd_addr=peer)

    def on_lmp_packet(self, sender_address: hci.Address, packet: lmp.Packet) -> None:
        """Handle the authentication PDUs; pass everything else to Bumble.

        Args:
            sender_address: the public address of the sending controller.
            packet: the LMP PDU.
        """
        if isinstance(packet, lmp.LmpAuRand):
            self._on_challenge(sender_address, bytes(packet.random_number))
        elif isinstance(packet, LmpSres):
            self._on_response(sender_address, packet.authentication_response)
        elif not self._on_auth_outcome(sender_address, packet):
            super().on_lmp_packet(sender_address, packet)

    def on_classic_disconnected(self, peer_address: hci.Address, reason: int) -> None:
        """Forget an authentication in progress on a link that ended.

        Args:
            peer_address: the peer of the ended ACL.
            reason: the disconnection reason for the host.
        """
        self._finish(peer_address)
        super().on_classic_disconnected(peer_address, reason)

    def _on_challenge(self, peer: hci.Address, challenge: bytes) -> None:
        """The peer authenticates us: ask our host for the key."""
        connection = self.classic_connections.get(peer)
        if connection is None or connection.handle == 0 or peer in self._auth:
            log.info("LMP_au_rand from %s without an idle ACL: dropped", peer)
            return
        self._begin(peer, _Auth(initiator=False, challenge=challenge))

    def _on_response(self, peer: hci.Address, answer: bytes) -> None:
        """Compare the peer's answer with ours; tell both hosts the outcome."""
        auth = self._auth.get(peer)
        if auth is None or not auth.initiator or auth.key is None:
            log.info("LMP_sres from %s that nobody asked for: dropped", peer)
            return
        expected = sres(auth.key, auth.challenge, peer)
        # A plain ==: this is the emulated controller, not the car's security (which the
        # architecture keeps in protocol/), and nothing can time it from the air.
        if answer == expected:
            self.send_lmp_packet(peer, lmp.LmpAccepted(lmp.Opcode.LMP_SRES))
            self._complete(peer, _Err.SUCCESS, auth.key)
        else:
            failure = _Err.AUTHENTICATION_FAILURE_ERROR
            self.send_lmp_packet(peer, lmp.LmpNotAccepted(lmp.Opcode.LMP_SRES, failure))
            self._complete(peer, failure)

    def _on_auth_outcome(self, peer: hci.Address, packet: lmp.Packet) -> bool:
        """Handle LMP_(not_)accepted for our au_rand or sres; False if it is not one."""
        if not isinstance(packet, lmp.LmpAccepted | lmp.LmpNotAccepted):
            return False
        if packet.response_opcode not in (lmp.Opcode.LMP_AU_RAND, lmp.Opcode.LMP_SRES):
            return False
        auth = self._auth.get(peer)
        if auth is None:
            log.info("LMP outcome %s from %s for no authentication: dropped", packet, peer)
            return True
        if isinstance(packet, lmp.LmpAccepted):
            self._complete(peer, _Err.SUCCESS, auth.key)
        else:
            self._complete(peer, packet.error_code)
        return True

    def _begin(self, peer: hci.Address, auth: _Auth) -> None:
        """Record ``auth``, arm its timeout and ask the host for the key."""
        loop = asyncio.get_running_loop()
        auth.timer = loop.call_later(self.lmp_response_timeout, self._timed_out, peer)
        self._auth[peer] = auth
        self.send_hci_packet(hci.HCI_Link_Key_Request_Event(bd_addr=peer))

    def _timed_out(self, peer: hci.Address) -> None:
        """Nobody answered in time: the authentication fails."""
        if peer in self._auth:
            log.info("authentication with %s: no answer in %.0f s", peer,
                     self.lmp_response_timeout)
            self._complete(peer, _Err.LMP_OR_LL_RESPONSE_TIMEOUT_ERROR)

    def _finish(self, peer: hci.Address) -> None:
        """Forget the authentication with ``peer`` and cancel its timer."""
        auth = self._auth.pop(peer, None)
        if auth is not None and auth.timer is not None:
            auth.timer.cancel()

    def _complete(self, peer: hci.Address, status: int, key: bytes | None = None) -> None:
        """End the authentication with ``peer``: tell our host ``status``."""
        self._finish(peer)
        connection = self.classic_connections.get(peer)
        if connection is None:
            return
        if status == _Err.SUCCESS:
            connection.ssp_state.link_key = key
            connection.ssp_state.authenticated = True
        event = hci.HCI_Authentication_Complete_Event
        self.send_hci_packet(event(status=status, connection_handle=connection.handle))
