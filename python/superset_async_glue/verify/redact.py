"""Never print a secret: every string verify shows passes through one Redactor.

The values come from the secret files the settings name (and the Redis password the rendered config
holds); each is also removed in its URL-quoted form, because Redis URLs carry it that way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

MASK = "********"
# user:password@ in any URL, whatever the password is (also catches secrets verify never read).
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@", re.I)


class Redactor:
    """Replaces known secret values, and the password part of any URL, with a mask."""

    def __init__(self, secrets: Iterable[str]) -> None:
        variants: set[str] = set()
        for value in secrets:
            if len(value) >= 4:  # shorter strings would mask ordinary words; no real secret is that short
                variants |= {value, quote(value, safe=""), quote(value)}
        self._secrets = sorted(variants, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", value)

    def data(self, value: Any) -> Any:
        """A copy of JSON-like data with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
            return [self.data(v) for v in value]
        return value
