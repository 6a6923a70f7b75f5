"""Reading captures of CarHub traffic down to its messages (``carhub-capture decode``).

Sans-I/O like the rest of ``protocol/``: bytes of a capture file in, decoded messages out.

    keylog        the key log's line format (``--keylog``, PROTOCOL.md §6.3)
    btsnoop       btsnoop records -> HCI ACL -> L2CAP -> ATT -> CarHub byte streams
    pcap          pcap/pcapng (dpkt) -> TCP streams -> HTTP upgrade + WebSocket -> streams
    conversation  one connection's two streams -> frames -> messages (decrypted with a key
                  log), with their time and direction
    decode        the entry point: a capture's bytes (either format) -> ``Decoded`` lines

Importing this package imports nothing heavy: ``shell.keylog`` uses ``keylog`` on every
start-up that has ``--keylog``, and the formats load only in ``decode``.
"""

from __future__ import annotations

__all__: list[str] = []
