"""Request bodies decoded strictly: the types the OpenAPI document states, nothing looser.

Litestar converts bodies leniently (``"k": "5"`` becomes 5) and decodes JSON before it
knows the target type, so JSON nested a thousand levels deep or invalid UTF-8 surface
as server errors. :class:`StrictBody` decodes the raw bytes in one pass straight into
the handler's msgspec struct with ``strict=True`` -- and only after the route's guards
have authenticated the caller, so anonymous junk never reaches the decoder. Every
failure is an :class:`InvalidRequest` naming the field (``$.documents[0].id``).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec
from litestar.dto import DTOConfig, MsgspecDTO
from litestar.typing import FieldDefinition

from controlplane.errors import InvalidRequest

__all__ = ["StrictBody", "decode_strict"]

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


def decode_strict(body: bytes, target: type[T]) -> T:
    """``body`` (JSON) as ``target``, with msgspec's strict type rules."""
    try:
        return msgspec.json.decode(body, type=target, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidRequest("the request body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidRequest("the request body is nested too deeply") from None


class StrictBody(MsgspecDTO[S], Generic[S]):
    """``dto=StrictBody[Model]`` on a handler: its ``data`` is decoded strictly."""

    config = DTOConfig()

    def decode_bytes(self, value: bytes) -> Any:
        return decode_strict(value, self.model_type)

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Any:
        # The handler's own data field, as without a DTO: the model's schema under its
        # own name, with the examples its Body() gives.
        return schema_creator.for_field_definition(field_definition)
