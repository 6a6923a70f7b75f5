"""The ``--notifications FILE`` the emulated iPhone posts: a JSON list, checked up front.

Each entry::

    {"app_id": "com.apple.MobileSMS", "app_name": "Messages", "title": "Anna",
     "subtitle": "", "message": "Running late", "category": "social",
     "actions": {"positive": "Reply", "negative": "Clear"}, "delay": 2.5,
     "remove_after": 30}

``app_id`` and ``title`` are required; ``app_name`` defaults to ``app_id``, the texts to
"", ``category`` (a lower-case ANCS category name) to ``other``, ``delay`` (seconds, counted
from the moment the first car subscribes to Notification Source) to 0. ``actions`` and
either label are optional. ``remove_after`` (seconds after posting) makes the phone remove
the notification by itself, as when the user clears it on the phone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phone_bridge.errors import BadInput
from protocol.apple.ancs import Category

__all__ = ["NotificationSpec", "load_notifications", "parse_notifications"]

_KEYS = frozenset(
    {"app_id", "app_name", "title", "subtitle", "message", "category", "actions", "delay",
     "remove_after"}
)
_CATEGORIES = {c.name.lower(): c for c in Category}


@dataclass(frozen=True)
class NotificationSpec:
    """One notification the phone will post."""

    app_id: str
    title: str
    app_name: str = ""
    subtitle: str = ""
    message: str = ""
    category: Category = Category.OTHER
    positive_action: str | None = None
    negative_action: str | None = None
    delay: float = 0.0
    remove_after: float | None = None


def load_notifications(path: Path) -> list[NotificationSpec]:
    """Read and check a notifications file.

    Raises:
        BadInput: unreadable, not JSON, or an entry that is not valid (says which).
    """
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read notifications file ({exc})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    try:
        return parse_notifications(data)
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None


def parse_notifications(data: Any) -> list[NotificationSpec]:
    """Check decoded JSON and turn it into specs.

    Raises:
        BadInput: not a list of valid entries.
    """
    if not isinstance(data, list):
        raise BadInput("notifications must be a JSON list")
    return [_entry(i, e) for i, e in enumerate(data)]


def _text(i: int, entry: dict[str, Any], key: str, default: str | None) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise BadInput(f"entry {i}: {key!r} must be a non-empty string" if default is None
                       else f"entry {i}: {key!r} must be a string")
    return value


def _seconds(i: int, entry: dict[str, Any], key: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e6:
        raise BadInput(f"entry {i}: {key!r} must be a number of seconds >= 0")
    return float(value)


def _entry(i: int, entry: Any) -> NotificationSpec:
    if not isinstance(entry, dict):
        raise BadInput(f"entry {i}: must be an object")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise BadInput(f"entry {i}: unknown key(s) {', '.join(unknown)}")
    category = entry.get("category", "other")
    if category not in _CATEGORIES:
        raise BadInput(f"entry {i}: unknown category {category!r} "
                       f"(one of {', '.join(_CATEGORIES)})")
    actions = entry.get("actions") or {}
    if not isinstance(actions, dict) or set(actions) - {"positive", "negative"}:
        raise BadInput(f"entry {i}: 'actions' must be {{\"positive\": ..., \"negative\": ...}}")
    labels = {k: v for k, v in actions.items() if v is not None}
    if not all(isinstance(v, str) and v for v in labels.values()):
        raise BadInput(f"entry {i}: action labels must be non-empty strings")
    app_id = _text(i, entry, "app_id", None)
    if "\0" in app_id:
        raise BadInput(f"entry {i}: 'app_id' must not contain NUL")
    return NotificationSpec(
        app_id=app_id,
        title=_text(i, entry, "title", None),
        app_name=_text(i, entry, "app_name", app_id),
        subtitle=_text(i, entry, "subtitle", ""),
        message=_text(i, entry, "message", ""),
        category=_CATEGORIES[category],
        positive_action=labels.get("positive"),
        negative_action=labels.get("negative"),
        delay=_seconds(i, entry, "delay") or 0.0,
        remove_after=_seconds(i, entry, "remove_after"),
    )
