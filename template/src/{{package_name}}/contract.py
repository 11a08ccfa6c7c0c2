"""The serving contract's comparisons that need no data library, so stages that only read JSON
(`gate`, `register`, `deploy`, `smoke`, ...) start without importing pandas or scikit-learn."""

from __future__ import annotations

from typing import Any


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON can carry (labels, predictions)."""
    return value.item() if hasattr(value, "item") else value


def differences(old: list[dict], new: list[dict]) -> list[str]:
    """How the serving contract changes from `old` to `new` (empty: compatible)."""
    before, after = {c["name"]: c for c in old}, {c["name"]: c for c in new}
    changes = [f"column {n!r} added" for n in after if n not in before]
    changes += [f"column {n!r} removed" for n in before if n not in after]
    for name in before.keys() & after.keys():
        if before[name]["kind"] != after[name]["kind"]:
            changes.append(f"column {name!r} changed from {before[name]['kind']} to {after[name]['kind']}")
        elif before[name]["nullable"] and not after[name]["nullable"]:
            changes.append(f"column {name!r} may no longer be missing")
    if not changes and [c["name"] for c in old] != [c["name"] for c in new]:
        changes.append("columns reordered (rows sent as lists would be misread)")
    return changes
