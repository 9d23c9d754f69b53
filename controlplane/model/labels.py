"""Tenant labels: small key=value tags operators select tenants by (``--label env=ci``)."""

from __future__ import annotations

import re

from controlplane.errors import InvalidRequest
from controlplane.inputs import check_identifier, check_text

__all__ = ["parse_label", "validate_labels"]

_KEY_RE = re.compile(r"[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?")  # whole string
MAX_LABELS = 32
MAX_VALUE_LENGTH = 256


def validate_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise InvalidRequest(f"at most {MAX_LABELS} labels per tenant")
    for key, value in labels.items():
        check_identifier(
            key, _KEY_RE, "label key", "1-63 lowercase letters, digits, '.', '_', '/', '-'"
        )
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise InvalidRequest(f"label {key!r}: value must be text of at most 256 characters")
        # Values are shown in tables and logs, one tenant a line.
        check_text(value, f"label {key!r}", single_line=True)
    return labels


def parse_label(text: str) -> tuple[str, str]:
    """``key=value`` -> (key, value), validated."""
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidRequest(f"label {text!r} must look like key=value")
    validate_labels({key: value})
    return key, value
