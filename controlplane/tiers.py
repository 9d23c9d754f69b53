"""The named sizes a tenant comes in: its role's limits and, for a server of its own,
that server's size (model/limits.py, model/compute.py say what each holds).

A primitive so that settings (``TENANTVEC_TIER``) and the model check against the one
enum without the base layer importing the model."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Tier"]


class Tier(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
