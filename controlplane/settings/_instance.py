"""Settings of the instance backend (a Postgres server of its own per tenant)."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.envparse import (
    parse_port_range,
)
from controlplane.errors import ConfigurationError
from controlplane.settings._fields import SettingsGroup, setting

__all__ = ["InstanceSettings"]


@dataclass(frozen=True, kw_only=True)
class InstanceSettings(SettingsGroup):
    concern = "the instance backend"

    ports: tuple[int, int] = setting(
        "TENANTVEC_INSTANCE_PORTS",
        "Ports on 127.0.0.1 the instance backend gives its tenants' servers (first-last); "
        "each instance takes the lowest free one. Keep it below Linux's ephemeral range "
        "(32768-60999): a client connection's local port there could hold an instance's.",
        default=(26000, 26999),
        parse=parse_port_range,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        low, high = self.ports
        if not 1 <= low <= high <= 65535:
            raise ConfigurationError("TENANTVEC_INSTANCE_PORTS must be a range of TCP ports")
