"""The admin API's OpenAPI 3.1 document, generated from its route table.

Nothing here is written by hand per route: paths, methods, parameters, request bodies and
answers all come from the table the server routes with, and every schema from
``msgspec.json.schema_components`` over the same Structs the server decodes and encodes.
So the document cannot describe a route, a field or a status that the server does not have.
``x-skyroute-action`` names the ``governance.policy`` action that decides who may call an
operation (null: any key with an admin role).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec

from skyroute import __version__

SCHEMAS = "#/components/schemas/"
RESPONSES = "#/components/responses/"
SECURITY_SCHEME = "bearer"


@dataclass(frozen=True, slots=True)
class Param:
    """A path or query parameter of a route."""

    name: str
    description: str
    required: bool = False
    enum: tuple[str, ...] | None = None
    pattern: str | None = None  # full-match regular expression
    location: Literal["query", "path"] = "query"


class DocumentedRoute(Protocol):
    """What the document needs to know about one route."""

    @property
    def method(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def action(self) -> str | None: ...
    @property
    def request(self) -> type[msgspec.Struct] | None: ...
    @property
    def response(self) -> Any: ...
    @property
    def summary(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def params(self) -> tuple[Param, ...]: ...
    @property
    def body_required(self) -> bool: ...


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(msgspec.Struct, frozen=True, kw_only=True):
    """Every error answer, in OpenAI's shape."""

    error: ErrorDetail


# Error answers every operation may give, and those only some may.
_ERRORS: dict[str, str] = {
    "400": "The request is not valid (body, query or a field's value).",
    "401": "Missing or invalid API key (one answer for every bad key).",
    "403": "The key's role or team does not allow this.",
    "404": "No such route, or no such object visible to this key.",
    "405": "The route exists but not with this method.",
    "409": "An object with this identity already exists.",
    "503": "The store is unavailable; try again later.",
}
_ALWAYS = ("401", "403", "404", "405", "503")


def openapi_document(routes: Sequence[DocumentedRoute]) -> dict[str, Any]:
    """An OpenAPI 3.1 document describing ``routes``."""
    types: list[Any] = [ErrorResponse]
    for route in routes:
        if route.request is not None:
            types.append(route.request)
        types.append(route.response)
    refs, components = msgspec.json.schema_components(types, ref_template=SCHEMAS + "{name}")
    error_ref, *rest = refs
    schemas = iter(rest)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        request_schema = next(schemas) if route.request is not None else None
        response_schema = next(schemas)
        operation = _operation(route, request_schema, response_schema)
        paths.setdefault(route.template, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "skyroute admin API",
            "version": __version__,
            "description": "Teams, virtual keys and usage. Every route needs a key with an "
            "admin role (admin, team_admin or viewer) or the master key.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                status: {
                    "description": text,
                    "content": {"application/json": {"schema": error_ref}},
                }
                for status, text in _ERRORS.items()
            },
            "securitySchemes": {SECURITY_SCHEME: {"type": "http", "scheme": "bearer"}},
        },
        "security": [{SECURITY_SCHEME: []}],
    }


def _operation(
    route: DocumentedRoute,
    request_schema: dict[str, Any] | None,
    response_schema: dict[str, Any],
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": _operation_id(route),
        "summary": route.summary,
        "x-skyroute-action": route.action,
    }
    if route.params:
        operation["parameters"] = [_parameter(param) for param in route.params]
    if request_schema is not None:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": request_schema}},
        }
    responses: dict[str, Any] = {
        str(route.status): {
            "description": route.summary,
            "content": {"application/json": {"schema": response_schema}},
        }
    }
    for status in _error_statuses(route):
        responses[status] = {"$ref": RESPONSES + status}
    operation["responses"] = responses
    return operation


def _error_statuses(route: DocumentedRoute) -> Iterable[str]:
    statuses = set(_ALWAYS)
    if route.request is not None or route.params:
        statuses.add("400")
    if route.request is not None and route.method in ("POST", "PATCH"):
        statuses.add("409")
    return sorted(statuses)


def _parameter(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if param.enum is not None:
        schema["enum"] = list(param.enum)
    if param.pattern is not None:
        schema["pattern"] = f"^{param.pattern}$"
    return {
        "name": param.name,
        "in": param.location,
        "description": param.description,
        "required": param.required or param.location == "path",
        "schema": schema,
    }


def _operation_id(route: DocumentedRoute) -> str:
    words = [part.strip("{}") for part in route.template.split("/") if part]
    return "_".join([route.method.lower(), *words]).replace(".", "_")
