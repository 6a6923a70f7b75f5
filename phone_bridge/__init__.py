"""CarHub: phone_bridge package."""

__all__: list[str] = []
