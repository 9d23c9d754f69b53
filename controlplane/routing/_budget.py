"""Per-server connection budgets: how many tenant connections this process may hold.

The router reserves a slot before a tenant pool may grow by one connection and
releases it only after that pool has been closed, so the connections a server sees
from this process never exceed the budget -- however many tenants it routes to. The
budget is a plain counter: every change happens under the router's lock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServerBudget"]


@dataclass
class ServerBudget:
    key: str
    limit: int
    reserved: int = 0
    releasing: int = 0  # reserved slots of pools being closed, about to come back
    waiting: int = 0  # requests waiting for a slot to come back
    peak: int = 0

    @property
    def free(self) -> int:
        return self.limit - self.reserved

    def take(self) -> bool:
        """Reserve one slot if one is free."""
        if self.reserved >= self.limit:
            return False
        self.reserved += 1
        self.peak = max(self.peak, self.reserved)
        return True

    def give_back(self, slots: int) -> None:
        if slots < 0 or slots > self.reserved:
            raise ValueError(f"budget {self.key!r}: cannot return {slots} of {self.reserved}")
        self.reserved -= slots
        self.releasing = max(0, self.releasing - slots)
