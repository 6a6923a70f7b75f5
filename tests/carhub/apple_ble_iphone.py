"""A small Bumble iPhone for the car's AMS/ANCS tests: central, GATT server, LE SC bonding.

Not the project's emulated iPhone (``phone_bridge/ios``): just enough of one to drive the
car, plus hooks to send it malformed bytes. It connects from a resolvable private address,
refuses every AMS/ANCS access with Insufficient Authentication until the link is encrypted
by a numeric-comparison bond, answers a Security Request by encrypting (bonded) or pairing,
and logs what the car did in ``log``.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from bumble import att, gatt, hci
from bumble.core import UUID
from bumble.device import Connection, Device
from bumble.keys import MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate

from protocol.apple import (
    AMS_ENTITY_ATTRIBUTE_UUID,
    AMS_ENTITY_UPDATE_UUID,
    AMS_REMOTE_COMMAND_UUID,
    AMS_SERVICE_UUID,
    ANCS_CONTROL_POINT_UUID,
    ANCS_DATA_SOURCE_UUID,
    ANCS_NOTIFICATION_SOURCE_UUID,
    ANCS_SERVICE_UUID,
)
from protocol.apple.ams import (
    RemoteCommand,
    decode_register,
    decode_remote_command,
    encode_entity_update,
    encode_remote_commands,
)
from protocol.apple.ancs import (
    AppAttributes,
    EventFlags,
    EventId,
    GetAppAttributes,
    GetNotificationAttributes,
    NotificationAttributes,
    NotificationEvent,
    PerformAction,
    decode_command,
    encode_notification_source,
    encode_response,
    split,
)
from radio import LocalRadio, open_hci

N = gatt.Characteristic.Properties
PERMS = gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE
TRACKS = [
    {
        0: "Artist One",
        1: "Album One",
        2: "A title far too long for one AMS notification",
        3: "201.5",
    },
    {0: "Artist Two", 1: "Album Two", 2: "Second", 3: "99.0"},
]


class Delegate(PairingDelegate):
    def __init__(self, phone: FakeIPhone) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self.phone = phone

    async def compare_numbers(self, number: int, digits: int) -> bool:
        self.phone.codes.append(f"{number:06d}")
        return True


class FakeIPhone:
    """Central + AMS/ANCS GATT server on a ``LocalRadio``."""

    def __init__(self, air: LocalRadio, name: str = "Test iPhone") -> None:
        self.air = air
        self.name = name
        self.irk = secrets.token_bytes(16)
        self.keys = MemoryKeyStore()
        self.log: list[str] = []
        self.codes: list[str] = []
        self.commands: list[RemoteCommand] = []
        self.actions: list[PerformAction] = []
        self.secure: set[int] = set()
        self.track = 0
        self.playing = "1,1.0,12.5"
        self.offered = [RemoteCommand.PLAY, RemoteCommand.PAUSE, RemoteCommand.NEXT_TRACK]
        self.notes: dict[int, dict[int, str]] = {}
        self.flags: dict[int, EventFlags] = {}
        self.registered: dict[int, tuple[int, ...]] = {}
        self._attr_request = (0, 0)
        self.connection: Connection | None = None
        self.device: Device | None = None
        self.transport: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- setup -----------------------------------------------------------------
    async def power_on(self) -> None:
        self.transport = await open_hci(self.air)
        device = Device.with_hci(
            self.name, hci.Address.ANY_RANDOM, self.transport.source, self.transport.sink
        )
        device.keystore = self.keys
        device.irk = self.irk
        device.pairing_config_factory = lambda _c: PairingConfig(
            sc=True,
            mitm=True,
            bonding=True,
            delegate=Delegate(self),
            identity_address_type=hci.Address.PUBLIC_DEVICE_ADDRESS,
        )
        self._build(device)
        await device.power_on()
        self.device = device

    def _value(self, read: Any = None, write: Any = None) -> gatt.CharacteristicValue:
        def r(conn: Connection) -> Any:
            self._check(conn)
            return read(conn) if read else b""

        def w(conn: Connection, value: bytes) -> Any:
            self._check(conn)
            return write(conn, value) if write else None

        return gatt.CharacteristicValue(read=r, write=w)

    def _check(self, conn: Any) -> None:
        conn = conn.connection if att.is_enhanced_bearer(conn) else conn
        if not (conn.is_encrypted and conn.handle in self.secure):
            self.log.append("refused")
            raise att.ATT_Error(att.ErrorCode.INSUFFICIENT_AUTHENTICATION)

    def _char(
        self, device: Device, uuid: str, props: int, read: Any = None, write: Any = None
    ) -> gatt.Characteristic[bytes]:
        char: gatt.Characteristic[bytes] = gatt.Characteristic(
            UUID(uuid), props, PERMS, self._value(read, write)
        )
        if props & N.NOTIFY:
            inner = device.gatt_server.make_descriptor_value(char)

            def cr(bearer: Any) -> Any:
                self._check(bearer)
                return inner.read(bearer)

            def cw(bearer: Any, value: bytes) -> Any:
                self._check(bearer)
                return inner.write(bearer, value)

            char.descriptors = [
                gatt.Descriptor(
                    gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                    PERMS,
                    att.AttributeValueV2(cr, write=cw),
                )
            ]
        return char

    def _build(self, device: Device) -> None:
        self.remote = self._char(
            device, AMS_REMOTE_COMMAND_UUID, N.NOTIFY | N.WRITE, write=self._on_command
        )
        self.update = self._char(
            device, AMS_ENTITY_UPDATE_UUID, N.NOTIFY | N.WRITE, write=self._on_register
        )
        self.attribute = self._char(
            device,
            AMS_ENTITY_ATTRIBUTE_UUID,
            N.READ | N.WRITE,
            read=self._read_attr,
            write=self._on_attr,
        )
        self.ns = self._char(device, ANCS_NOTIFICATION_SOURCE_UUID, N.NOTIFY)
        self.cp = self._char(device, ANCS_CONTROL_POINT_UUID, N.WRITE, write=self._on_cp)
        self.ds = self._char(device, ANCS_DATA_SOURCE_UUID, N.NOTIFY)
        device.add_service(
            gatt.Service(UUID(AMS_SERVICE_UUID), [self.remote, self.update, self.attribute])
        )
        device.add_service(gatt.Service(UUID(ANCS_SERVICE_UUID), [self.ns, self.cp, self.ds]))
        self.remote.on(
            self.remote.EVENT_SUBSCRIPTION, lambda c, n, i: self._spawn(self.push_commands())
        )
        self.ns.on(self.ns.EVENT_SUBSCRIPTION, lambda c, n, i: self._spawn(self._replay()))

    # -- connection --------------------------------------------------------------
    async def connect(self, car_address: str) -> Connection:
        assert self.device is not None
        rpa = hci.Address.generate_private_address(self.irk)
        self.rpa = rpa
        await self.device.send_command(hci.HCI_LE_Set_Random_Address_Command(random_address=rpa))
        self.device.random_address = rpa
        target = hci.Address(car_address, hci.Address.RANDOM_DEVICE_ADDRESS)
        conn = await self.device.connect(
            target, own_address_type=hci.OwnAddressType.RANDOM, timeout=5
        )
        self.connection = conn
        conn.on(
            conn.EVENT_SECURITY_REQUEST, lambda _a: self._spawn(self._on_security_request(conn))
        )
        conn.on(conn.EVENT_PAIRING, lambda _k: self._secure(conn, "paired"))
        conn.on(conn.EVENT_PAIRING_FAILURE, lambda r: self.log.append(f"pairing_failed:{r}"))
        conn.on(
            conn.EVENT_CONNECTION_ENCRYPTION_CHANGE, lambda: self._spawn(self._on_encrypted(conn))
        )
        conn.on(conn.EVENT_DISCONNECTION, lambda _r: self._gone(conn))
        return conn

    def _gone(self, conn: Connection) -> None:
        self.secure.discard(conn.handle)  # handles are reused by the next connection
        self.log.append("disconnected")

    def _secure(self, conn: Connection, why: str) -> None:
        self.secure.add(conn.handle)
        self.log.append(why)

    async def _on_security_request(self, conn: Connection) -> None:
        self.log.append("security_request")
        if await self.keys.get(str(conn.peer_address)) is not None:
            await conn.encrypt()
        else:
            try:
                await conn.pair()
            except Exception as exc:  # refused by the car: logged by the failure event
                self.log.append(f"pair_error:{type(exc).__name__}")

    async def _on_encrypted(self, conn: Connection) -> None:
        bonded = await self.keys.get(str(conn.peer_address)) is not None
        if conn.is_encrypted and bonded and conn.handle not in self.secure:
            self._secure(conn, "encrypted_bonded")

    async def disconnect(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None and conn.handle in (self.device.connections if self.device else {}):
            try:
                await asyncio.wait_for(conn.disconnect(), 5)
            except Exception:
                pass

    async def close(self) -> None:
        await self.disconnect()
        if self.transport is not None:
            await self.transport.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def mtu(self) -> int:
        return int(self.connection.att_mtu) if self.connection else 23

    async def notify(self, char: gatt.Characteristic[bytes], value: bytes) -> None:
        assert self.device is not None and self.connection is not None
        await self.device.notify_subscriber(self.connection, char, value)

    # -- AMS -----------------------------------------------------------------------
    def _values(self, entity: int) -> dict[int, str]:
        if entity == 0:
            return {0: "Music", 1: self.playing, 2: "0.5"}
        if entity == 1:
            return {0: str(self.track), 1: str(len(TRACKS)), 2: "0", 3: "0"}
        return TRACKS[self.track]

    def _on_register(self, _conn: Connection, value: bytes) -> None:
        entity, attrs = decode_register(value)
        self.registered[entity] = attrs
        self._spawn(self.push_entity(entity))

    async def push_entity(self, entity: int) -> None:
        for attr in self.registered.get(entity, ()):
            data = encode_entity_update(
                entity, attr, self._values(entity)[attr], max_size=self.mtu() - 3
            )
            await self.notify(self.update, data)

    async def push_commands(self) -> None:
        await self.notify(self.remote, encode_remote_commands(self.offered))

    def _on_command(self, _conn: Connection, value: bytes) -> None:
        cmd = decode_remote_command(value)
        self.commands.append(cmd)
        if cmd == RemoteCommand.NEXT_TRACK:
            self.track = (self.track + 1) % len(TRACKS)
            self._spawn(self.push_entity(2))
        elif cmd == RemoteCommand.PAUSE:
            self.playing = "0,0.0,13.0"
            self._spawn(self.push_entity(0))

    def _on_attr(self, _conn: Connection, value: bytes) -> None:
        self._attr_request = (value[0], value[1])
        self.log.append(f"attribute:{value.hex()}")

    def _read_attr(self, _conn: Connection) -> bytes:
        entity, attr = self._attr_request
        return self._values(entity)[attr].encode()

    async def indicate_service_changed(self, value: bytes) -> None:
        """Indicate Service Changed (0x2A05) with raw ``value`` to the car."""
        assert self.device is not None and self.connection is not None
        char = self.device.gatt_service.service_changed_characteristic  # type: ignore[union-attr]
        await asyncio.wait_for(self.device.indicate_subscriber(self.connection, char, value), 5)

    # -- ANCS -----------------------------------------------------------------------
    def add_note(self, uid: int, values: dict[int, str], flags: EventFlags = EventFlags(0)) -> None:
        self.notes[uid] = values
        self.flags[uid] = flags

    async def post(
        self, uid: int, values: dict[int, str], flags: EventFlags = EventFlags(0), category: int = 4
    ) -> None:
        self.add_note(uid, values, flags)
        await self.notify(
            self.ns,
            encode_notification_source(NotificationEvent(EventId.ADDED, flags, category, 1, uid)),
        )

    async def remove(self, uid: int) -> None:
        self.notes.pop(uid, None)
        await self.notify(
            self.ns,
            encode_notification_source(
                NotificationEvent(EventId.REMOVED, EventFlags(0), 4, 0, uid)
            ),
        )

    async def _replay(self) -> None:
        for uid in list(self.notes):
            flags = self.flags[uid] | EventFlags.PRE_EXISTING
            await self.notify(
                self.ns,
                encode_notification_source(NotificationEvent(EventId.ADDED, flags, 4, 1, uid)),
            )

    def _on_cp(self, _conn: Connection, value: bytes) -> None:
        cmd = decode_command(value)
        if isinstance(cmd, PerformAction):
            self.actions.append(cmd)
            self._spawn(self.remove(cmd.uid))
            return
        if isinstance(cmd, GetNotificationAttributes):
            if cmd.uid not in self.notes:
                raise att.ATT_Error(0xA2)
            values = self.notes[cmd.uid]
            wanted = {
                a: (values.get(a, "")[:m] if m else values.get(a, "")) for a, m in cmd.attributes
            }
            data = encode_response(
                NotificationAttributes(cmd.uid, wanted), [a for a, _ in cmd.attributes]
            )
        else:
            assert isinstance(cmd, GetAppAttributes)
            data = encode_response(AppAttributes(cmd.app_id, {0: "Messages"}), [0])
        self._spawn(self._send_chunks(split(data, self.mtu())))

    async def _send_chunks(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            await self.notify(self.ds, chunk)
