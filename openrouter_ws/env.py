"""Tiny helpers that read settings from the environment.

A bad value stops the process with a message naming the variable, instead of a
traceback from somewhere deep in Django.
"""

import os
from decimal import Decimal, InvalidOperation


class SettingsError(RuntimeError):
    pass


def env(name: str, default: str | None = None) -> str | None:
    """Read NAME, or the contents of the file named by NAME_FILE (for container secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            with open(file_name, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from None
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be a boolean (true/false/1/0/yes/no), got {value!r}")


def envint(name: str, default: int, minimum: int | None = None) -> int:
    value = env(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {number}")
    return number


def envfloat(name: str, default: float, minimum: float | None = None) -> float:
    value = env(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {number}")
    return number


def envdecimal(name: str, default: str) -> Decimal:
    value = env(name) or default
    try:
        return Decimal(value)
    except InvalidOperation:
        raise SettingsError(f"{name} must be a decimal number, got {value!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    value = env(name, default) or ""
    return [item.strip() for item in value.split(",") if item.strip()]
