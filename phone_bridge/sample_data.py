"""Sample contacts for a phone: ``python -m phone_bridge.sample_data N [PHOTOS] > book.vcf``.

The generator lives in ``shell.sample_data`` so that the car's demo uses it too; this module
keeps the phone-side name that the README, the compose lab and users' scripts call.
"""

from __future__ import annotations

import sys

from shell.sample_data import generate_vcards, main, sample_png

__all__ = ["generate_vcards", "main", "sample_png"]

if __name__ == "__main__":
    sys.exit(main())
