"""Declared JSON endpoints: validation in, serialisation out, and the OpenAPI document.

A handler states its body and response models; this module parses and validates the body,
checks the session (unless the endpoint is public), enforces CSRF on state-changing requests,
and serialises the result. The OpenAPI document is built from the same declarations, so it
cannot drift from the code.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.errors import BadRequest, UnsupportedMediaType, ValidationFailed

API_PREFIX = "/api/v1"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

BodyT = TypeVar("BodyT", bound=BaseModel)
EndpointHandler = Callable[..., Awaitable[BaseModel | web.Response | None]]
Guard = Callable[[web.Request, "Endpoint"], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: EndpointHandler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    # public: no session needed (login, health). allow_enrolment: usable while a required
    # second factor is still being enrolled.
    public: bool = False
    allow_enrolment: bool = False
    # Also open to a visit-link holder's session (the patient's join page), without an account.
    allow_visit_session: bool = False
    roles: frozenset[str] | None = None
    errors: tuple[int, ...] = ()
    # A success body that is not JSON (e.g. "text/csv"): the handler returns its own response.
    produces: str | None = None


@dataclass
class Api:
    """A collection of endpoints; `guard` checks session, roles and CSRF for non-public ones."""

    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        public: bool = False,
        allow_enrolment: bool = False,
        allow_visit_session: bool = False,
        roles: frozenset[str] | None = None,
        errors: tuple[int, ...] = (),
        produces: str | None = None,
    ) -> Callable[[EndpointHandler], EndpointHandler]:
        def register(handler: EndpointHandler) -> EndpointHandler:
            self.endpoints.append(
                Endpoint(
                    method=method.upper(),
                    path=API_PREFIX + path,
                    handler=handler,
                    summary=summary,
                    tag=tag,
                    body=body,
                    response=response,
                    status=status,
                    public=public,
                    allow_enrolment=allow_enrolment,
                    allow_visit_session=allow_visit_session,
                    roles=roles,
                    errors=errors,
                    produces=produces,
                )
            )
            return handler

        return register

    def include(self, other: Api) -> None:
        self.endpoints.extend(other.endpoints)

    def mount(self, app: web.Application, guard: Guard) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _bind(endpoint, guard))


def _bind(endpoint: Endpoint, guard: Guard) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        await guard(request, endpoint)
        args: list[Any] = [request]
        if endpoint.body is not None:
            args.append(await parse_body(request, endpoint.body))
        result = await endpoint.handler(*args)
        if isinstance(result, web.Response):
            return result
        if result is None:
            return web.Response(status=204 if endpoint.status == 200 else endpoint.status)
        return web.json_response(
            text=result.model_dump_json(), status=endpoint.status, content_type="application/json"
        )

    return handle


async def parse_body(request: web.Request, model: type[BodyT]) -> BodyT:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the request body as application/json")
    raw = await request.read()  # bounded by the application's client_max_size
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON", code="malformed_json") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(
            "some fields are missing or invalid",
            extra={"fields": _field_errors(exc)},
        ) from None


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    # Only the location and pydantic's message: never echo the submitted value back.
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors(include_input=False, include_url=False)
    ]


def openapi_document(api: Api, title: str, version: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document built from the endpoint declarations."""
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        }
    }
    paths: dict[str, dict[str, Any]] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            schemas[name] = definition
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    for ep in api.endpoints:
        operation: dict[str, Any] = {
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": ep.handler.__name__,
            "responses": {},
        }
        params = [seg[1:-1] for seg in ep.path.split("/") if seg.startswith("{")]
        if params:
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if ep.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(ep.body)}},
            }
        has_body = ep.response is not None or ep.produces is not None
        success = str(ep.status if has_body or ep.status != 200 else 204)
        operation["responses"][success] = {"description": HTTPStatus(int(success)).phrase}
        if ep.produces is not None:
            operation["responses"][success]["content"] = {
                ep.produces: {"schema": {"type": "string"}}
            }
        if ep.response is not None:
            operation["responses"][success]["content"] = {
                "application/json": {"schema": ref(ep.response)}
            }
        error_statuses = set(ep.errors)
        if ep.body is not None:
            error_statuses |= {400, 413, 415, 422}
        if not ep.public:
            error_statuses |= {401, 403}
        for status in sorted(error_statuses):
            operation["responses"][str(status)] = {
                "description": HTTPStatus(status).phrase,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        if not ep.public:
            operation["security"] = [{"session": []}]
        paths.setdefault(ep.path, {})[ep.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "liaison_session"}
            },
        },
    }
