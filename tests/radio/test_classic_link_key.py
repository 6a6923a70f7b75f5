"""A bonded Classic phone reconnects with its stored link key: no new SSP code."""

from __future__ import annotations

import asyncio

import pytest
from bumble import hci
from bumble.device import Connection
from bumble.keys import PairingKeys

from tests.radio.classic_rig import Host, T, radio_with


async def _authenticate(connection: Connection) -> None:
    await asyncio.wait_for(connection.authenticate(), T)


async def _both_keys(a: Host, b: Host) -> tuple[bytes | None, bytes | None]:
    """The link key each side stored for the other (the keystore write is async)."""
    for _ in range(100):
        keys = (await a.stored_key(b), await b.stored_key(a))
        if None not in keys:
            break
        await asyncio.sleep(0.01)
    return keys


async def _reconnect(initiator: Host, responder: Host, connection: Connection) -> Connection:
    await asyncio.wait_for(connection.disconnect(), T)
    return await initiator.connect(responder)


async def _pair(phone: Host, car: Host) -> Connection:
    connection = await phone.connect(car)
    await _authenticate(connection)
    assert len(phone.delegate.codes) == 1
    assert phone.delegate.codes == car.delegate.codes
    phone_key, car_key = await _both_keys(phone, car)
    assert phone_key is not None and phone_key == car_key
    return connection


def _responder_side(host: Host, other: Host) -> Connection:
    (connection,) = host.device.connections.values()
    assert connection.peer_address == other.address
    return connection


async def test_bonded_phone_reconnects_without_a_new_code() -> None:
    async with radio_with("car", "phone") as (_server, (car, phone)):
        connection = await _pair(phone, car)
        key = await phone.stored_key(car)

        connection = await _reconnect(phone, car, connection)
        await _authenticate(connection)
        assert connection.authenticated
        await asyncio.sleep(0.05)  # the car's Authentication Complete is on its way
        assert _responder_side(car, phone).authenticated
        assert phone.delegate.codes == car.delegate.codes and len(car.delegate.codes) == 1
        assert await phone.stored_key(car) == key  # no new key was made


async def test_car_started_authentication_uses_the_key_too() -> None:
    async with radio_with("car", "phone") as (_server, (car, phone)):
        connection = await _pair(phone, car)
        await _reconnect(phone, car, connection)
        await _authenticate(_responder_side(car, phone))
        assert len(car.delegate.codes) == 1


async def test_initiator_without_its_key_pairs_again() -> None:
    async with radio_with("car", "phone") as (_server, (car, phone)):
        connection = await _pair(phone, car)
        old = await phone.stored_key(car)
        await phone.keystore.delete(str(car.address))

        connection = await _reconnect(phone, car, connection)
        await _authenticate(connection)
        assert len(phone.delegate.codes) == 2 and phone.delegate.codes == car.delegate.codes
        phone_key, car_key = await _both_keys(phone, car)
        assert phone_key == car_key and phone_key != old


async def test_peer_that_forgot_the_bond_is_key_missing_then_pairs() -> None:
    # The car forgot the phone: the phone's controller says PIN or Key Missing, like a
    # real one; the phone's host drops its key and authenticates again with SSP.
    async with radio_with("car", "phone") as (_server, (car, phone)):
        connection = await _pair(phone, car)
        await car.keystore.delete(str(phone.address))

        connection = await _reconnect(phone, car, connection)
        with pytest.raises(hci.HCI_Error) as failure:
            await _authenticate(connection)
        assert failure.value.error_code == hci.HCI_ErrorCode.PIN_OR_KEY_MISSING_ERROR
        assert len(phone.delegate.codes) == 1

        await phone.keystore.delete(str(car.address))
        await _authenticate(connection)
        assert connection.authenticated
        assert len(phone.delegate.codes) == 2 and phone.delegate.codes == car.delegate.codes
        phone_key, car_key = await _both_keys(phone, car)
        assert phone_key == car_key


async def test_different_keys_are_an_authentication_failure_on_both_sides() -> None:
    async with radio_with("car", "phone") as (_server, (car, phone)):
        connection = await _pair(phone, car)
        wrong = PairingKeys(link_key=PairingKeys.Key(value=bytes(16), authenticated=True))
        await car.keystore.update(str(phone.address), wrong)

        connection = await _reconnect(phone, car, connection)
        car_failures: list[int] = []
        _responder_side(car, phone).on("connection_authentication_failure",
                                      car_failures.append)
        with pytest.raises(hci.HCI_Error) as failure:
            await _authenticate(connection)
        assert failure.value.error_code == hci.HCI_ErrorCode.AUTHENTICATION_FAILURE_ERROR
        await asyncio.sleep(0.05)
        assert car_failures == [hci.HCI_ErrorCode.AUTHENTICATION_FAILURE_ERROR]
        assert not connection.authenticated
        assert len(phone.delegate.codes) == 1  # no code was shown for a failed key


async def test_a_peer_host_that_never_answers_times_out() -> None:
    async with radio_with("car", "phone") as (server, (car, phone)):
        connection = await _pair(phone, car)
        connection = await _reconnect(phone, car, connection)
        for controller in server.radio.link.controllers:
            controller.lmp_response_timeout = 0.2  # type: ignore[attr-defined]
        never = asyncio.get_running_loop().create_future()

        async def hung(_address: hci.Address) -> bytes | None:
            return await never  # type: ignore[no-any-return]

        car.device.host.link_key_provider = hung
        with pytest.raises(hci.HCI_Error) as failure:
            await _authenticate(connection)
        assert failure.value.error_code == hci.HCI_ErrorCode.LMP_OR_LL_RESPONSE_TIMEOUT_ERROR
        never.cancel()
