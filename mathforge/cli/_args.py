"""Argument parsing shared by the CLI subcommands."""

from __future__ import annotations

import json
from typing import Any


def json_object(flag: str, text: str) -> dict[str, Any]:
    """`text` as a JSON object, or a ValueError naming `flag` (e.g. --task-args)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{flag}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag}: a JSON object, got {text!r}")
    return value
