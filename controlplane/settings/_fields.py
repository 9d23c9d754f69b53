"""How a setting is declared: its variable, its words, how its text is read -- and what
every group of settings does with those (read the environment, check, show, document).

A group is a frozen dataclass of :func:`setting` fields subclassing :class:`SettingsGroup`;
``Settings`` (the package's top) is one too, made of its own fields and the groups.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from controlplane.errors import ConfigurationError

__all__ = ["SettingDoc", "SettingsGroup", "group", "setting"]


def setting(
    env: str,
    doc: str,
    default: Any = None,
    *,
    parse: Callable[[str], Any] = str,
    aliases: tuple[str, ...] = (),
    positive: bool = False,
    url: bool = False,
    secret: bool = False,
    show: Callable[[Any], str] | None = None,
    **kw: Any,
) -> Any:
    """A settings field read from ``env`` (or, when unset, from the first set alias).

    ``parse`` turns the variable's text into the value; a ValueError it raises becomes a
    ConfigurationError naming the variable. ``positive``: a number that must be > 0;
    ``url``: an http:// or https:// URL.
    ``secret``: never shown (``***``) nor in repr; ``show``: how its value is shown.
    """
    if "default_factory" not in kw:
        kw["default"] = default
    if secret:
        kw["repr"] = False
    metadata = {
        "env": env,
        "doc": doc,
        "aliases": aliases,
        "parse": parse,
        "positive": positive,
        "url": url,
        "secret": secret,
        "show": show,
    }
    return field(metadata=metadata, **kw)


def group(cls: type[SettingsGroup]) -> Any:
    """A field of ``Settings`` holding one group of settings (read with it)."""
    return field(default_factory=cls, metadata={"group": cls})


@dataclass(frozen=True)
class SettingDoc:
    env: str
    doc: str


@dataclass(frozen=True, kw_only=True)
class SettingsGroup:
    """The settings of one concern. Subclasses are frozen kw-only dataclasses of
    :func:`setting` (and, at the top, :func:`group`) fields."""

    # What the group is for, in a few words ("the neon backend").
    concern: ClassVar[str] = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Self:
        """The group as ``environ`` sets it; ``overrides`` (fields by name) win."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if "group" in f.metadata:
                values[f.name] = f.metadata["group"].from_env(environ)
                continue
            name = next(
                (n for n in (f.metadata["env"], *f.metadata["aliases"]) if environ.get(n)),
                None,
            )
            if name is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](environ[name])
            except ValueError as exc:
                raise ConfigurationError(f"{name}: {exc}") from None
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("positive") and value <= 0:
                raise ConfigurationError(f"{f.metadata['env']} must be positive")
            if f.metadata.get("url") and not value.startswith(("http://", "https://")):
                raise ConfigurationError(f"{f.metadata['env']} must be an http:// or https:// URL")

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (fields by name), checked again."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def env_of(cls, name: str) -> str:
        """The variable of field ``name``."""
        return str(next(f.metadata["env"] for f in fields(cls) if f.name == name))

    @classmethod
    def docs(cls) -> Iterator[SettingDoc]:
        """Every setting of the group (and of its groups), in declaration order."""
        for f in fields(cls):
            if "group" in f.metadata:
                yield from f.metadata["group"].docs()
            else:
                yield SettingDoc(env=f.metadata["env"], doc=f.metadata["doc"])

    def display_values(self) -> dict[str, str | None]:
        """Every setting by variable name, fit to print: secrets masked, URLs redacted."""
        shown: dict[str, str | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if "group" in f.metadata:
                shown.update(value.display_values())
            elif value is None or value == frozenset():
                shown[f.metadata["env"]] = None
            elif f.metadata["secret"]:
                shown[f.metadata["env"]] = "***"
            elif f.metadata["show"] is not None:
                shown[f.metadata["env"]] = f.metadata["show"](value)
            elif isinstance(value, tuple):
                shown[f.metadata["env"]] = "-".join(map(str, value))
            elif isinstance(value, frozenset):
                shown[f.metadata["env"]] = ",".join(sorted(value))
            else:
                shown[f.metadata["env"]] = str(value)
        return shown
