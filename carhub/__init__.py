"""CarHub: carhub package."""

__all__: list[str] = []
