"""Personal data shown to people: masked unless a role needs it in full."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str:
    """Mask a phone number to its first three and last four digits (138****5678)."""
    if not phone:
        return ""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_name(name: str | None) -> str:
    """Mask a resident's name to the surname and one star per remaining character (张**)."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)
