"""``python -m phone_bridge.cli``: the same as the ``phone-bridge`` console script."""

from phone_bridge.cli import main

main()
