"""The mass-deletion guard: a sync must not empty the car's mirror by accident.

A file cut short, exported from the wrong account or saved half-way gives the phone far
fewer contacts than the car holds, and a sync makes the car's mirror equal to the phone's
contacts: it would delete the rest. The sender asks ``refuses_deletes`` once, after it
knows what the car holds (the anchor it recognised, or the car's manifest) and before it
sends any batch; the phone's shell refuses such a sync unless the user allowed it.

Contacts the sender leaves out as over the bounds of PROTOCOL.md section 7 count as
deletions too: the car would lose them just the same.
"""

from __future__ import annotations

from protocol.errors import LocalProtocolError, Reason

__all__ = ["MAX_DELETE_SHARE", "MIN_GUARDED_DELETES", "DeletesRefused", "refuses_deletes"]

# A sync may delete at most half of the car's mirror; removing a few contacts from a small
# book is routine, so up to 20 deletions always pass (a book of 30 may drop to 10).
MAX_DELETE_SHARE = 0.5
MIN_GUARDED_DELETES = 20


def refuses_deletes(mirror: int, deletes: int) -> bool:
    """Tell whether a sync that deletes ``deletes`` of the car's ``mirror`` contacts is refused.

    Args:
        mirror: how many contacts the car holds for this phone.
        deletes: how many of them the sync would delete.

    Returns:
        True when it would delete more than half of the mirror and more than 20 contacts.
    """
    return deletes > MIN_GUARDED_DELETES and deletes > mirror * MAX_DELETE_SHARE


class DeletesRefused(LocalProtocolError):
    """A sync was stopped before its first batch because it would delete too much.

    It is the phone's own policy, not a peer's fault: nothing was sent, the car is
    unchanged, and the session stays usable.

    Args:
        mirror: how many contacts the car holds.
        deletes: how many of them the sync would have deleted.
        anchor: the car's anchor (its mirror is still the one it names).
    """

    def __init__(self, mirror: int, deletes: int, anchor: bytes) -> None:
        super().__init__(
            Reason.STATE, f"the sync would delete {deletes} of the car's {mirror} contacts"
        )
        self.mirror, self.deletes, self.anchor = mirror, deletes, anchor
