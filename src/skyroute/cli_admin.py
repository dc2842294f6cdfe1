"""``skyroute migrate | teams | keys | usage``: administration straight against the store.

Decided, and why:

- These commands open the configured store themselves (``store.database_url``, else the
  SQLite file in ``store.data_dir``) and act as the master key, so an operator can bootstrap
  teams and keys before any gateway runs. Every write goes through ``KeyManager``, the same
  code and checks the HTTP admin API uses.
- SQLite is migrated on the spot (one file, one operator). PostgreSQL is shared by every
  replica, so its schema is only ever upgraded by ``skyroute migrate``; the other commands
  refuse to run against an older schema.
- Output is an aligned plain-text table, or JSON with ``--json``. A new key's plaintext is
  printed once, with a line saying so; lists show only ``sk-sr-…abcd``.
- Every expected failure (bad config, bad flags, refused, not found, store down) is one
  line on stderr and exit status 2; never a traceback, and database URLs only redacted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.core.config import Config, ConfigError
from skyroute.core.errors import GatewayError, ObjectNotFound
from skyroute.governance.budget import Period
from skyroute.governance.directory import MASTER, Caller, KeyDirectory
from skyroute.governance.keys import KeyHasher, Role
from skyroute.governance.manage import (
    BudgetIn,
    KeyCreate,
    KeyCreated,
    KeyManager,
    KeyView,
    TeamCreate,
    TeamView,
    parse_since,
    parse_span,
)
from skyroute.server.config_loader import load_config
from skyroute.store import engine_for, migrate, redacted_url
from skyroute.store.engine import is_sqlite
from skyroute.store.errors import StoreUnavailable
from skyroute.store.revision import HEAD_REVISION, current_revision

ADMIN = Caller(MASTER)

EXIT_ERROR = 2
PERIODS = ("day", "week", "month", "total")


class CliError(Exception):
    """A failure to report as one line on stderr (exit 2)."""


@dataclass(frozen=True)
class Context:
    config: Config
    engine: AsyncEngine
    manager: KeyManager
    json: bool


Action = Callable[[argparse.Namespace, Context], Awaitable[None]]


def add_commands(commands: Any) -> None:
    """Register the admin commands on ``skyroute``'s sub-parsers."""
    migrate = commands.add_parser("migrate", help="upgrade the database schema to the newest")
    _common(migrate)
    migrate.set_defaults(run=_migrate, command_name="migrate")

    teams = commands.add_parser("teams", help="create and list teams").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = _action(teams, "create", "create a team", _team_create)
    create.add_argument("name")
    _limits(create)
    _action(teams, "list", "list teams", _team_list)

    keys = commands.add_parser("keys", help="create, list, revoke and rotate virtual keys")
    key_actions = keys.add_subparsers(required=True, metavar="ACTION")
    create = _action(key_actions, "create", "create a key (printed once)", _key_create)
    create.add_argument("--name", default="")
    create.add_argument("--team", help="team id or name")
    create.add_argument("--models", help="comma-separated model names (default: every model)")
    create.add_argument("--expires", help="a duration (30d, 12h) or an ISO 8601 date-time")
    create.add_argument("--role", default="key", choices=["key", "viewer", "team_admin", "admin"])
    _limits(create)
    listing = _action(key_actions, "list", "list keys (never the keys themselves)", _key_list)
    listing.add_argument("--team", help="team id or name")
    revoke = _action(key_actions, "revoke", "revoke a key now", _key_revoke)
    revoke.add_argument("key_id")
    rotate = _action(key_actions, "rotate", "replace a key; the old one works a while", _rotate)
    rotate.add_argument("key_id")
    rotate.add_argument("--overlap", default="1h", help="how long the old key keeps working")

    usage = commands.add_parser("usage", help="spend and tokens, grouped")
    _common(usage)
    usage.add_argument("--by", default="key", choices=["key", "team", "model", "provider"])
    usage.add_argument("--since", default="7d", help="a duration (7d, 24h) or an ISO date")
    usage.add_argument("--team", help="team id or name")
    usage.set_defaults(run=_runner(_usage), command_name="usage")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="path to skyroute.yaml (default: $SKYROUTE_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", help="USD/PERIOD, period day|week|month|total: 500/month")
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")
    parser.add_argument("--max-parallel", type=int, help="requests in flight at once")


def _action(actions: Any, name: str, help_text: str, action: Action) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
    _common(parser)
    # "skyroute keys create" -> "keys create", for error lines.
    parser.set_defaults(run=_runner(action), command_name=parser.prog.partition(" ")[2])
    return parser


# --- running ---------------------------------------------------------------------


def _runner(action: Action) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return _guarded(args, lambda config: _with_store(args, config, action))

    return run


def _migrate(args: argparse.Namespace) -> int:
    return _guarded(args, lambda config: _upgrade(args, config))


def _guarded(args: argparse.Namespace, body: Callable[[Config], Coroutine[Any, Any, None]]) -> int:
    prog = f"skyroute {args.command_name}"
    try:
        path = args.config or os.environ.get("SKYROUTE_CONFIG")
        if not path:
            raise CliError("--config (or SKYROUTE_CONFIG) is required")
        try:
            config = load_config(path)
        except ConfigError as exc:
            raise CliError("; ".join(exc.errors)) from None
        asyncio.run(body(config))
    except StoreUnavailable as exc:
        print(f"{prog}: the database is unavailable ({exc.detail})", file=sys.stderr)
        return EXIT_ERROR
    except (CliError, ValueError) as exc:
        print(f"{prog}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except GatewayError as exc:
        print(f"{prog}: {_one_line(exc.message)}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _open_engine(config: Config) -> AsyncEngine:
    url = config.store.database_url.reveal() if config.store.database_url else None
    return engine_for(url, config.store.data_dir)


def _where(config: Config) -> str:
    if config.store.database_url:
        return redacted_url(config.store.database_url.reveal())
    return os.path.join(config.store.data_dir, "skyroute.db")


async def _upgrade(args: argparse.Namespace, config: Config) -> None:
    engine = _open_engine(config)
    try:
        await migrate(engine)
        revision = await current_revision(engine)
    finally:
        await engine.dispose()
    _emit(args.json, {"database": _where(config), "revision": revision},
          f"{_where(config)}: schema at revision {revision}")  # fmt: skip


async def _with_store(args: argparse.Namespace, config: Config, action: Action) -> None:
    root = config.auth.root_secret or config.auth.master_key
    if root is None or config.auth.master_key is None:
        raise CliError("auth.master_key is required")
    engine = _open_engine(config)
    try:
        if is_sqlite(engine):
            await migrate(engine)
        else:
            current = await current_revision(engine)
            if current != HEAD_REVISION:
                raise CliError(
                    f"the schema of {_where(config)} is at {current or 'nothing'}, "
                    f"not {HEAD_REVISION}: "
                    "run `skyroute migrate` first"
                )
        hasher = KeyHasher(root)
        directory = KeyDirectory(hasher, config.auth.master_key)
        await directory.refresh(engine)
        manager = KeyManager(engine, hasher, directory)
        await action(args, Context(config, engine, manager, args.json))
    finally:
        await engine.dispose()


# --- the commands ----------------------------------------------------------------


async def _team_create(args: argparse.Namespace, ctx: Context) -> None:
    spec = TeamCreate(
        name=args.name,
        budget=parse_budget(args.budget),
        rpm=args.rpm,
        tpm=args.tpm,
        max_parallel=args.max_parallel,
    )
    view = await ctx.manager.create_team(ADMIN, spec)
    _print_teams(ctx, [view], single=True)


async def _team_list(args: argparse.Namespace, ctx: Context) -> None:
    _print_teams(ctx, await ctx.manager.list_teams(ADMIN), single=False)


async def _key_create(args: argparse.Namespace, ctx: Context) -> None:
    spec = KeyCreate(
        name=args.name,
        team_id=await _team_id(ctx, args.team),
        role=Role(args.role),
        models=parse_models(args.models),
        budget=parse_budget(args.budget),
        rpm=args.rpm,
        tpm=args.tpm,
        max_parallel=args.max_parallel,
        expires_at=parse_expiry(args.expires, datetime.now(UTC)),
    )
    _print_created(ctx, await ctx.manager.create_key(ADMIN, spec))


async def _key_list(args: argparse.Namespace, ctx: Context) -> None:
    team = await _team_id(ctx, args.team)
    _print_keys(ctx, await ctx.manager.list_keys(ADMIN, team))


async def _key_revoke(args: argparse.Namespace, ctx: Context) -> None:
    view = await ctx.manager.revoke_key(ADMIN, args.key_id)
    _print_keys(ctx, [view])


async def _rotate(args: argparse.Namespace, ctx: Context) -> None:
    overlap = parse_span(args.overlap) if not args.overlap.isdigit() else float(args.overlap)
    created = await ctx.manager.rotate_key(ADMIN, args.key_id, overlap)
    old = await ctx.manager.get_key(ADMIN, args.key_id)
    _print_created(ctx, created, note=f"{old.id} keeps working until {_time(old.expires_at)}")


async def _usage(args: argparse.Namespace, ctx: Context) -> None:
    since = parse_since(args.since, datetime.now(UTC))
    team = await _team_id(ctx, args.team)
    rows = await ctx.manager.usage(ADMIN, args.by, since, team)
    if ctx.json:
        print(msgspec.json.encode(rows).decode())
        return
    headers = [args.by, "requests", "attempts", "prompt_tokens", "completion_tokens", "cost_usd"]
    cells = [
        [r.group or "-", r.requests, r.attempts, r.prompt_tokens, r.completion_tokens, r.cost_usd]
        for r in rows
    ]
    print(f"usage since {since.isoformat()}")
    print(table(headers, cells))


# --- parsing flags ---------------------------------------------------------------


def parse_budget(text: str | None) -> BudgetIn | None:
    """``"500/month"`` → ``BudgetIn(usd="500", period=month)``; ``ValueError`` otherwise."""

    if text is None:
        return None
    usd, slash, period = text.partition("/")
    if not slash or period not in PERIODS or not usd.strip():
        raise ValueError(f"--budget must look like 500/month (period: {'|'.join(PERIODS)})")
    return BudgetIn(usd=usd.strip().lstrip("$"), period=Period(period))


def parse_models(text: str | None) -> list[str] | None:
    if text is None:
        return None
    models = [name.strip() for name in text.split(",") if name.strip()]
    if not models:
        raise ValueError("--models needs at least one model name")
    return models


def parse_expiry(text: str | None, now: datetime) -> datetime | None:
    """A duration from now (``30d``) or an ISO 8601 date-time (UTC without an offset)."""

    if text is None:
        return None
    try:
        return now + timedelta(seconds=parse_span(text))
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("--expires must be a duration (30d, 12h) or an ISO date-time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def _team_id(ctx: Context, team: str | None) -> str | None:
    """A team given by id or by name (an id wins)."""

    if team is None:
        return None
    teams = await ctx.manager.list_teams(ADMIN)
    for view in teams:
        if view.id == team:
            return view.id
    for view in teams:
        if view.name == team:
            return view.id
    raise ObjectNotFound(f"no team with the id or name {team!r}")


# --- printing --------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns, two spaces apart; control characters escaped."""
    cells = [[_cell(v) for v in row] for row in [list(headers), *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _cell(value: object) -> str:
    text = "-" if value is None else str(value)
    # Names come from API callers; never let one move the cursor or clear the terminal.
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _one_line(text: str) -> str:
    return " ".join(_cell(text).split())


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _budget_text(view: KeyView | TeamView) -> str:
    return "-" if view.budget is None else f"{view.budget.usd}/{view.budget.period.value}"


def _emit(as_json: bool, data: object, text: str) -> None:
    print(msgspec.json.encode(data).decode() if as_json else text)


def _print_teams(ctx: Context, views: list[TeamView], *, single: bool) -> None:
    if ctx.json:
        print(msgspec.json.encode(views[0] if single else views).decode())
        return
    headers = ["id", "name", "budget", "rpm", "tpm", "max_parallel"]
    rows = [[v.id, v.name, _budget_text(v), v.rpm, v.tpm, v.max_parallel] for v in views]
    print(table(headers, rows))


def _print_keys(ctx: Context, views: list[KeyView]) -> None:
    if ctx.json:
        print(msgspec.json.encode(views).decode())
        return
    headers = ["id", "name", "key", "team", "role", "models", "budget", "rpm", "tpm",
               "max_parallel", "expires", "status"]  # fmt: skip
    rows = [
        [
            v.id,
            v.name,
            v.display,
            v.team_id,
            v.role.value,
            "*" if v.models is None else ",".join(v.models),
            _budget_text(v),
            v.rpm,
            v.tpm,
            v.max_parallel,
            _time(v.expires_at),
            "revoked" if v.revoked_at else "active",
        ]
        for v in views
    ]
    print(table(headers, rows))


def _print_created(ctx: Context, created: KeyCreated, note: str | None = None) -> None:
    if ctx.json:
        print(msgspec.json.encode(created).decode())
        return
    print(f"key: {created.key}")
    print("This key will not be shown again: store it now.")
    if note:
        print(note)
    print()
    _print_keys(ctx, [created.info])
