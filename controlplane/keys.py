"""Tenant API keys and the admin token: issued once, stored hashed, checked in constant time.

A tenant key looks like ``tvk_<id>_<secret>``: the 12-character id is public (it names
the key in listings and revocations), the 43-character secret is shown once and only
its SHA-256 is stored. The secret carries 256 random bits, so a plain hash is enough --
there is nothing to brute-force that a slow hash would protect.

:class:`KeyVerifier` answers "which tenant incarnation does this key open?" for every
API request from a cache that the router's maintenance re-checks in the background
(``TENANTVEC_ROUTE_TTL_SECONDS``): the catalog is read on a request only for a key the
process has not seen yet. A revocation in this process takes effect at once; in other
processes within the TTL. A deleted tenant's keys die at once in every process: each
request compares the key's incarnation with the tenant's current route.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from controlplane.catalog.models import utcnow
from controlplane.context import PlaneContext
from controlplane.errors import (
    AuthenticationFailed,
    CatalogUnavailable,
    InvalidRequest,
    KeyNotFound,
    TenantNotFound,
)
from controlplane.inputs import check_text
from controlplane.model.records import ApiKey, validate_tenant_id
from controlplane.model.views import IssuedKeyView
from controlplane.routing import TenantRouter
from controlplane.secretbox import read_or_create_secret_file
from controlplane.settings import Settings

__all__ = [
    "IssuedKey",
    "KeyVerifier",
    "VerifiedKey",
    "create_key",
    "list_keys",
    "load_admin_token",
    "revoke_key",
]

logger = logging.getLogger(__name__)

# Whole strings (re.fullmatch).
_KEY_RE = re.compile(r"tvk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})")
_KEY_ID_RE = re.compile(r"[a-z0-9]{12}")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
ADMIN_TOKEN_FILE = "admin-token"
# Keys one process remembers at most: good ones, and refused ones (kept apart).
_MAX_CACHED = 100_000
_MAX_REFUSED = 10_000
# A key no request presented for this long is no longer re-checked, but forgotten.
_KEEP_UNUSED = 300.0
# Keys re-checked per catalog query.
_BATCH = 1000


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: the only moment its secret exists outside the caller."""

    key: ApiKey
    secret: str  # the whole bearer token, "tvk_<id>_<secret>"

    def view(self) -> IssuedKeyView:
        return IssuedKeyView(**msgspec.structs.asdict(self.key.view()), key=self.secret)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(
    plane: PlaneContext, tenant_id: str, *, actor: str, name: str | None = None
) -> IssuedKey:
    """Issue a new key for a live tenant. Its secret is returned here and never again."""
    validate_tenant_id(tenant_id)
    if name is not None:
        if not 1 <= len(name) <= 255:
            raise InvalidRequest("a key name must be 1-255 characters")
        check_text(name, "key name", single_line=True)
    tenant = await plane.catalog.get_tenant(tenant_id)
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    secret = secrets.token_urlsafe(32)
    record = await plane.catalog.add_key(
        ApiKey(
            id=key_id,
            tenant_uid=tenant.uid,
            tenant_id=tenant.id,
            name=name,
            created_by=actor,
            created_at=utcnow(),
            revoked_at=None,
            secret_hash=_hash(secret),
        )
    )
    logger.info("tenant %s: key %s created by %s", tenant.id, key_id, actor)
    return IssuedKey(key=record, secret=f"tvk_{key_id}_{secret}")


async def list_keys(
    plane: PlaneContext, tenant_id: str, *, include_revoked: bool = False
) -> list[ApiKey]:
    validate_tenant_id(tenant_id)
    tenant = await plane.catalog.get_tenant(tenant_id)
    return await plane.catalog.list_keys(tenant.uid, include_revoked=include_revoked)


async def revoke_key(plane: PlaneContext, tenant_id: str, key_id: str, *, actor: str) -> ApiKey:
    """Revoke one of the tenant's keys (idempotent)."""
    validate_tenant_id(tenant_id)
    tenant = await plane.catalog.get_tenant(tenant_id)
    key = await plane.catalog.find_key(key_id) if _KEY_ID_RE.fullmatch(key_id) else None
    if key is None or key.tenant_uid != tenant.uid:
        raise KeyNotFound(tenant_id, key_id)
    revoked = await plane.catalog.revoke_key(key_id)
    assert revoked is not None
    await plane.tenant_changed(tenant_id)
    logger.info("tenant %s: key %s revoked by %s", tenant_id, key_id, actor)
    return revoked


def load_admin_token(settings: Settings) -> str:
    """The admin bearer token: ``TENANTVEC_ADMIN_TOKEN``, else a 0600 file under HOME."""
    if settings.api.admin_token:
        return settings.api.admin_token
    path = admin_token_path(settings)
    return read_or_create_secret_file(path, lambda: secrets.token_urlsafe(32)).strip()


def admin_token_path(settings: Settings) -> Path:
    return settings.home / ADMIN_TOKEN_FILE


@dataclass(frozen=True)
class VerifiedKey:
    """What a valid key opens: one incarnation of one tenant."""

    key_id: str
    tenant_id: str
    tenant_uid: str


@dataclass(slots=True)
class _Verified:
    key: VerifiedKey
    secret_hash: str
    checked_at: float  # monotonic: when the catalog last said the key opens its tenant
    used_at: float  # and when a request last presented it


class KeyVerifier:
    """Resolves bearer tokens to the tenant incarnation they open, from a cache the
    router's maintenance keeps fresh.

    The catalog is read on a request only for a key this process has not seen (or not
    for longer than ``ttl``). Keys in use are re-checked in the background, every key
    about to be ``ttl / 2`` old in one query, so a revocation or deletion made by
    another process is seen within ``ttl`` plus a maintenance tick, and requests never
    wait for it. Refused keys (unknown, revoked, of a gone tenant) are remembered for
    ``ttl`` apart from good ones, in a bounded cache: a flood of guessed keys costs one
    catalog query each at most and cannot push good keys out.

    Every request also compares the key's incarnation with the tenant's current route:
    a tenant deleted and created again under the same id -- in any process -- is another
    incarnation, which no key of its predecessor opens. While the catalog is
    unreachable, keys verified within the router's grace keep working
    (``routing.grace``).
    """

    def __init__(self, router: TenantRouter, *, ttl: float) -> None:
        self._router = router
        self._plane = router.plane
        self._ttl = ttl
        self._known: dict[str, _Verified] = {}  # key id -> a key that opens its tenant
        self._refused: dict[str, float] = {}  # key id -> when it was refused (oldest first)
        self._plane.on_tenant_change(self._forget_tenant_async)
        router.on_incarnation_change(self._forget_tenant)
        router.on_maintenance(self.refresh)

    def is_admin(self, token: str, admin_token: str) -> bool:
        return hmac.compare_digest(token.encode(), admin_token.encode())

    async def verify(self, token: str) -> VerifiedKey:
        """The tenant incarnation ``token`` opens; AuthenticationFailed if it opens none."""
        match = _KEY_RE.fullmatch(token)
        if match is None:
            raise AuthenticationFailed(
                "unrecognised token: expected a tenant key ('tvk_<id>_<secret>') or the admin token"
            )
        key_id, secret = match.groups()
        now = time.monotonic()
        refused_at = self._refused.get(key_id)
        entry = self._known.get(key_id)
        if refused_at is not None and now - refused_at <= self._ttl:
            entry = None
        elif entry is None or now - entry.checked_at > self._ttl:
            entry = await self._load(key_id, entry)
        if entry is None or not hmac.compare_digest(entry.secret_hash, _hash(secret)):
            # One message for unknown, revoked and wrong keys: which one it was is of
            # use only to someone guessing.
            raise AuthenticationFailed("invalid or revoked API key")
        entry.used_at = now
        key = entry.key
        try:
            route = await self._router.route(key.tenant_id)
            if route.uid != key.tenant_uid:
                # The cached route may be the one that is stale (a new incarnation made
                # elsewhere, whose fresh key this is): the catalog decides.
                route = await self._router.route(key.tenant_id, fresh=True)
        except TenantNotFound:
            route = None
        if route is None or route.uid != key.tenant_uid:
            # The tenant was deleted and made again (perhaps by another process): its
            # keys died with the incarnation they were issued for.
            self._forget_tenant(key.tenant_id)
            raise AuthenticationFailed("invalid or revoked API key")
        return key

    async def _load(self, key_id: str, previous: _Verified | None) -> _Verified | None:
        fresh_read, live = await self._router.grace.read(
            lambda: self._plane.catalog.live_keys([key_id]),
            verified_at=previous.checked_at if previous is not None else None,
        )
        if not fresh_read or live is None:
            return previous  # the catalog is down; verified within the grace
        self._record([key_id], live, time.monotonic())
        return self._known.get(key_id)

    async def refresh(self) -> None:
        """Re-check, in batched queries, the keys in use that are about to expire.

        Called by the router's maintenance task. Keys no request presented for a while
        are dropped instead (a request re-reads them); refusals expire after ``ttl``.
        """
        now = time.monotonic()
        while self._refused and now - next(iter(self._refused.values())) > self._ttl:
            self._refused.pop(next(iter(self._refused)))
        for key_id in [k for k, e in self._known.items() if now - e.used_at > _KEEP_UNUSED]:
            del self._known[key_id]
        due = any(now - e.checked_at > self._ttl / 2 for e in self._known.values())
        if not due or not self._router.grace.should_ask():
            return
        # Keys due soon ride along (past ttl / 4: due within a tick or two), so keys first
        # seen a moment apart share one query instead of drifting into one each.
        stale = [k for k, e in self._known.items() if now - e.checked_at > self._ttl / 4]
        for start in range(0, len(stale), _BATCH):
            batch = stale[start : start + _BATCH]
            try:
                live = await self._plane.catalog.live_keys(batch)
            except CatalogUnavailable:
                self._router.grace.failed()  # entries stay while the grace lasts
                return
            self._router.grace.answered()
            self._record(batch, live, now)

    def _record(self, asked: list[str], live: dict[str, ApiKey], checked_at: float) -> None:
        for key_id in asked:
            key = live.get(key_id)
            if key is None:
                self._known.pop(key_id, None)
                self._refused.pop(key_id, None)  # re-inserted last: the order is by age
                if len(self._refused) >= _MAX_REFUSED:
                    self._refused.pop(next(iter(self._refused)))
                self._refused[key_id] = checked_at
                continue
            previous = self._known.get(key_id)
            if previous is None and len(self._known) >= _MAX_CACHED:
                self._known.pop(next(iter(self._known)))  # the longest known
            self._known[key_id] = _Verified(
                VerifiedKey(key.id, key.tenant_id, key.tenant_uid),
                key.secret_hash,
                checked_at,
                previous.used_at if previous is not None else checked_at,
            )

    def _forget_tenant(self, tenant_id: str) -> None:
        for key_id in [k for k, v in self._known.items() if v.key.tenant_id == tenant_id]:
            del self._known[key_id]

    async def _forget_tenant_async(self, tenant_id: str) -> None:
        self._forget_tenant(tenant_id)
