"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VCARD_CORPUS = ROOT / "tests" / "data" / "vcard"


@pytest.fixture
def vcard_corpus() -> Path:
    return VCARD_CORPUS
