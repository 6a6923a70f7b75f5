"""The shared shell: I/O that the car (``carhub``) and the phone (``phone_bridge``) both use.

``protocol/`` decides; this package moves bytes for it. It holds the one transport seam
(``shell.transport``), the adapters that implement it, the connection driver that pumps a
``protocol.connection`` machine over a transport, and the small helpers both CLIs share.
``carhub`` and ``phone_bridge`` import from here and never from each other.
"""

__all__: list[str] = []
