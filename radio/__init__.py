"""CarHub: radio package."""

__all__: list[str] = []
