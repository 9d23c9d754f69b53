"""Tenant labels: small key=value tags operators select tenants by (``--label env=ci``)."""

from __future__ import annotations

import re

from controlplane.errors import InvalidRequest

__all__ = ["parse_label", "validate_labels"]

_KEY_RE = re.compile(r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$")
MAX_LABELS = 32
MAX_VALUE_LENGTH = 256


def validate_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise InvalidRequest(f"at most {MAX_LABELS} labels per tenant")
    for key, value in labels.items():
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise InvalidRequest(
                f"invalid label key {key!r}: lowercase letters, digits, '.', '_', '/', '-'"
            )
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise InvalidRequest(f"label {key!r}: value must be text of at most 256 characters")
    return labels


def parse_label(text: str) -> tuple[str, str]:
    """``key=value`` -> (key, value), validated."""
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidRequest(f"label {text!r} must look like key=value")
    validate_labels({key: value})
    return key, value
