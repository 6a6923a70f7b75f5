"""The emulated iPhone: a Bumble central that serves AMS and ANCS as an iPhone does.

No hardware, no app: it joins the emulated radio, finds a car by the ANCS Service
Solicitation in its advertising, connects as central from a resolvable private address and
offers Apple's two accessory services, which the car uses as a GATT client.

    phone       ``IPhone`` and ``IPhoneOptions``: scan, connect, security, reconnect
    pairing     LE Secure Connections numeric comparison as an iPhone does it (it never
                pairs first: it waits for the car's Security Request)
    bonds       ``BondStore``: its IRK, identity address and bonds in ``ios-bonds.json`` (0600)
    guard       ``LinkGuard``: ATT Insufficient Authentication (0x05) until the link is
                encrypted with an authenticated key, on values and CCCDs alike
    ams         ``AmsServer``: Remote Command, Entity Update, Entity Attribute over a
                ``phone_bridge.player.Player``
    ancs        ``AncsServer``: Notification Source, Control Point, Data Source
    notifications  the ``--notifications FILE`` format and its loader
    scan        which advertisements it connects to (``--car``)
    services    ``ServiceTable``: AMS/ANCS withdrawn and restored (``IPhone.set_services``),
                the GATT table rebuilt and Service Changed indicated

The codecs are ``protocol.apple`` (shared with the car). In-process use::

    phone = IPhone(LocalRadio_or_"tcp-client:127.0.0.1:7000",
                   IPhoneOptions(state_dir=path, player=player, notifications=specs,
                                 auto_confirm=True, emit=events.append))
    await phone.start()      # scans and connects in the background; reconnects on drop
    await phone.connected.wait()
    phone.ancs.post(spec)    # post one more notification now
    await phone.set_services(ancs=False)   # "Share System Notifications" off: Service Changed
    phone.ams.set_player(other_player)     # another playlist (None: no media app)
    await phone.stop()

Events (``emit``, ``--json``): ``scanning``, ``connected`` (car, address), ``pairing-code``
(code), ``bonded`` (car, authenticated), ``pairing-failed``, ``encrypted`` (car: a bonded
reconnect), ``disconnected`` (reason; "radio lost" when the radio process went away: it
then reopens with backoff 0.5 s to 5 s, powers on with the same identity, IRK and bonds and
scans again), ``remote-command`` (command), ``notification-posted``, ``action`` (uid, action,
label, app_id, title), ``notification-removed`` (uid), ``services-changed`` (ams, ancs,
start, end).

Unlike a real iPhone it has one player app, a fixed volume and no shuffle/repeat; its
services come and go only when told (``set_services``, ``--ancs-off-after``), and a bonded
car that was away meanwhile gets no Service Changed on reconnect (it must rediscover on
each connection); no connection-parameter
requests; no address rotation while connected (a new private address per connection
only); no "Allow Notifications?" prompt after bonding; it refuses Just Works outright;
and it re-pairs by itself when the car has lost the bond (iOS asks the user to forget
the device first).
"""

from __future__ import annotations

from phone_bridge.ios.notifications import NotificationSpec, load_notifications
from phone_bridge.ios.phone import IPhone, IPhoneOptions

__all__ = ["IPhone", "IPhoneOptions", "NotificationSpec", "load_notifications"]
