"""Secrets at rest: the Fernet box for DSNs, generated passwords and 0600 secret files."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from controlplane.errors import ConfigurationError

__all__ = ["SecretBox", "new_password", "read_or_create_secret_file"]

SECRET_KEY_FILE = "secret.key"


def new_password() -> str:
    """A random password for a tenant role: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def read_or_create_secret_file(path: Path, generate: Callable[[], str]) -> str:
    """Return the secret stored in ``path``, creating it (mode 0600) on first use.

    Creation is atomic (``O_EXCL``), so two processes starting at once agree on one
    secret. A file readable by others is refused rather than silently used.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigurationError(f"cannot create secret file {path}: {exc.strerror}") from None
    else:
        value = generate()
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return value
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigurationError(
            f"secret file {path} is readable by other users (mode {mode:o}); run 'chmod 600 {path}'"
        )
    try:
        value = path.read_text().strip()
    except OSError as exc:
        if exc.errno == errno.EACCES:
            raise ConfigurationError(f"cannot read secret file {path}: permission denied") from None
        raise
    if not value:
        raise ConfigurationError(f"secret file {path} is empty; remove it to generate a new one")
    return value


class SecretBox:
    """Encrypts and decrypts short secrets (DSNs) with Fernet.

    Several keys may be given to rotate: the first encrypts, all decrypt. Ciphertexts
    are plain ASCII so they fit a text column.
    """

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigurationError("no secret key configured")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except ValueError:
            raise ConfigurationError(
                "TENANTVEC_SECRET_KEY is not a valid Fernet key (32 url-safe base64-encoded "
                "bytes; generate one with 'tenantctl secret-key')"
            ) from None

    @classmethod
    def from_config(cls, secret_key: str | None, home: Path) -> SecretBox:
        """The configured key(s), or the key file under ``home``, generated on first use."""
        if secret_key:
            return cls([k for k in secret_key.split(",") if k.strip()])
        key = read_or_create_secret_file(
            home / SECRET_KEY_FILE, lambda: Fernet.generate_key().decode()
        )
        return cls([key])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "cannot decrypt a secret in the catalog with the configured key; was "
                "TENANTVEC_SECRET_KEY or the key file changed? To rotate, list the new key "
                "first and the old one after it, comma-separated"
            ) from None
