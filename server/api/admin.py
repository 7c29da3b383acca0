"""Administration: accounts and per-role rules. Admins only."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from server.api.routing import Api
from server.audit import Actor
from server.auth.roles import Role
from server.db.models import User
from server.errors import Conflict, NotFound
from server.state import principal, services

api = Api()
ADMIN = frozenset({Role.ADMIN.value})


class AdminUserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    disabled: bool
    totp_enrolled: bool
    created_at: datetime


class UserListOut(BaseModel):
    users: list[AdminUserOut]


class CreateUserRequest(BaseModel):
    username: str = Field(min_length=2, max_length=63)
    display_name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(min_length=1, max_length=256)


class RolePolicyOut(BaseModel):
    role: Role
    totp_required: bool
    required_by_configuration: bool = Field(
        description="security.totp_required_roles requires it; only the configuration can lift it."
    )


class RolePoliciesOut(BaseModel):
    roles: list[RolePolicyOut]


class RolePolicyRequest(BaseModel):
    totp_required: bool


def user_out(user: User) -> AdminUserOut:
    return AdminUserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        disabled=user.disabled_at is not None,
        totp_enrolled=user.totp_enabled_at is not None,
        created_at=user.created_at,
    )


def _user_id(request: web.Request) -> int:
    raw = request.match_info["user_id"]
    if not raw.isdigit():
        raise NotFound("no such user", code="user_not_found")
    return int(raw)


@api.route(
    "GET", "/admin/users", summary="List accounts", tag="admin", response=UserListOut, roles=ADMIN
)
async def list_users(request: web.Request) -> UserListOut:
    return UserListOut(users=[user_out(u) for u in await services(request).users.list()])


@api.route(
    "POST",
    "/admin/users",
    summary="Create an account",
    tag="admin",
    body=CreateUserRequest,
    response=AdminUserOut,
    status=201,
    roles=ADMIN,
    errors=(409,),
)
async def create_user(request: web.Request, body: CreateUserRequest) -> AdminUserOut:
    user = await services(request).users.create(
        body.username, body.display_name, body.role, body.password, by=Actor.of(principal(request))
    )
    return user_out(user)


@api.route(
    "POST",
    "/admin/users/{user_id}/disable",
    summary="Disable an account and end its sessions",
    tag="admin",
    response=AdminUserOut,
    roles=ADMIN,
    errors=(404,),
)
async def disable_user(request: web.Request) -> AdminUserOut:
    user_id = _user_id(request)
    if user_id == principal(request).user_id:
        raise Conflict("You cannot disable your own account.", code="cannot_disable_self")
    by = Actor.of(principal(request))
    return user_out(await services(request).users.set_disabled(user_id, True, by=by))


@api.route(
    "POST",
    "/admin/users/{user_id}/enable",
    summary="Enable a disabled account",
    tag="admin",
    response=AdminUserOut,
    roles=ADMIN,
    errors=(404,),
)
async def enable_user(request: web.Request) -> AdminUserOut:
    by = Actor.of(principal(request))
    return user_out(await services(request).users.set_disabled(_user_id(request), False, by=by))


@api.route(
    "POST",
    "/admin/users/{user_id}/totp/reset",
    summary="Clear a lost second factor",
    tag="admin",
    roles=ADMIN,
    errors=(404,),
)
async def reset_totp(request: web.Request) -> None:
    await services(request).auth.reset_totp(_user_id(request), by=Actor.of(principal(request)))


@api.route(
    "GET",
    "/admin/roles",
    summary="Per-role rules",
    tag="admin",
    response=RolePoliciesOut,
    roles=ADMIN,
)
async def list_role_policies(request: web.Request) -> RolePoliciesOut:
    svc = services(request)
    policies = await svc.users.role_policies()
    forced = svc.settings.security.totp_required_roles
    return RolePoliciesOut(
        roles=[
            RolePolicyOut(role=r, totp_required=v, required_by_configuration=r in forced)
            for r, v in policies.items()
        ]
    )


@api.route(
    "PUT",
    "/admin/roles/{role}",
    summary="Require (or not) a second factor for a role",
    tag="admin",
    body=RolePolicyRequest,
    response=RolePolicyOut,
    roles=ADMIN,
    errors=(404,),
)
async def set_role_policy(request: web.Request, body: RolePolicyRequest) -> RolePolicyOut:
    try:
        role = Role(request.match_info["role"])
    except ValueError:
        raise NotFound("no such role", code="role_not_found") from None
    svc = services(request)
    forced = role in svc.settings.security.totp_required_roles
    if forced and not body.totp_required:
        raise Conflict(
            "The server's configuration requires a second factor for this role.",
            code="required_by_configuration",
        )
    await svc.users.set_role_policy(role, body.totp_required, by=Actor.of(principal(request)))
    return RolePolicyOut(
        role=role,
        totp_required=(await svc.users.role_policies())[role],
        required_by_configuration=forced,
    )
