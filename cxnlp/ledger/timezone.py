"""The configured time zone: the ledger stores naive UTC, people read and write local time."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cxnlp.errors import ConfigError


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (CXNLP_TIMEZONE), e.g. Asia/Shanghai") from exc


def local_zone() -> ZoneInfo:
    from cxnlp.settings import get_settings

    return _zone(get_settings().timezone)


def to_utc(value: datetime) -> datetime:
    """Naive UTC as stored; a naive value is taken to be local time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=local_zone())
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def to_local(value: datetime | None) -> datetime | None:
    """A stored (naive UTC) time in the configured zone, for people."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc).astimezone(local_zone())


def show(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    local = to_local(value)
    return "" if local is None else local.strftime(fmt)
