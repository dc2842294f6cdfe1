"""``skyroute``: serve, check, emulate, demo; migrate, teams, keys, usage (``cli_admin``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from skyroute.cli_admin import add_commands
from skyroute.core.config import MAX_WORKERS, ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.run(args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skyroute", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="path to skyroute.yaml (default: $SKYROUTE_CONFIG)")
    serve.add_argument("--host", help="listen address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port, 4000)")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes serving the port, sharing limits and budgets (default: server.workers, 1)",
    )
    serve.add_argument(
        "--demo", action="store_true", help="run against built-in emulated clouds (no config)"
    )
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check", help="validate a config file and exit")
    check.add_argument("--config", help="path to skyroute.yaml (default: $SKYROUTE_CONFIG)")
    check.set_defaults(run=_check)

    emulate = commands.add_parser("emulate", help="run an emulated cloud, for tests and demos")
    emulate.add_argument(
        "flavor", choices=["openai", "azure", "bedrock", "vertex", "gemini", "anthropic"]
    )
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=int, default=8000)
    emulate.add_argument(
        "--api-key", help="the key clients must present (bedrock: an API key; gemini: the key)"
    )
    emulate.add_argument("--token", help="vertex: a static bearer token to accept")
    emulate.add_argument(
        "--service-account-file",
        help="vertex: trust this service-account key for /token (written here if missing)",
    )
    emulate.add_argument(
        "--access-key-id", help="bedrock: the SigV4 key id to accept ($AWS_ACCESS_KEY_ID)"
    )
    emulate.add_argument("--secret-access-key", help="bedrock: its secret ($AWS_SECRET_ACCESS_KEY)")
    emulate.set_defaults(run=_emulate)

    demo = commands.add_parser(
        "demo", help="scripted failover run against emulated clouds, printing who served what"
    )
    demo.set_defaults(run=_demo)

    add_commands(commands)
    return parser


def _config_path(args: argparse.Namespace) -> str | None:
    import os

    return args.config or os.environ.get("SKYROUTE_CONFIG")


def _serve(args: argparse.Namespace) -> int:
    if args.demo:
        from skyroute.server.demo import serve_demo

        serve_demo(host=args.host or "127.0.0.1", port=args.port or 4000)
        return 0
    path = _config_path(args)
    if path is None:
        print(
            "skyroute serve: --config (or SKYROUTE_CONFIG) is required; or try --demo",
            file=sys.stderr,
        )
        return 2
    from skyroute.server.app import create_app
    from skyroute.server.config_loader import load_config
    from skyroute.server.run import serve
    from skyroute.telemetry.logs import collect_secrets, configure_logging

    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_errors(exc)
        return 1
    configure_logging(config.server.log_level, collect_secrets(config))
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    workers = config.server.workers if args.workers is None else args.workers
    if not 1 <= workers <= MAX_WORKERS:
        print(f"skyroute serve: --workers must be from 1 to {MAX_WORKERS}", file=sys.stderr)
        return 2
    if workers > 1:
        from skyroute.server.workers import serve_workers

        return serve_workers(config, host, port, workers)
    serve(create_app(config), host, port)
    return 0


def _check(args: argparse.Namespace) -> int:
    path = _config_path(args)
    if path is None:
        print("skyroute check: --config (or SKYROUTE_CONFIG) is required", file=sys.stderr)
        return 2
    from skyroute.server.config_loader import load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_errors(exc)
        return 1
    print(f"{path}: OK ({len(config.providers)} providers, {len(config.models)} models)")
    return 0


def _print_errors(exc: ConfigError) -> None:
    for line in exc.errors:
        print(f"error: {line}", file=sys.stderr)


def _emulate(args: argparse.Namespace) -> int:
    import os

    from skyroute.emulators.runner import run_emulator_forever

    extra: dict[str, object] = {}
    if args.flavor == "bedrock":
        extra["access_key_id"] = args.access_key_id or os.environ.get("AWS_ACCESS_KEY_ID")
        extra["secret_access_key"] = args.secret_access_key or os.environ.get(
            "AWS_SECRET_ACCESS_KEY"
        )
        extra["session_token"] = os.environ.get("AWS_SESSION_TOKEN")
    elif args.flavor == "vertex":
        extra["token"] = args.token
        if args.service_account_file:
            extra["service_accounts"] = [_service_account(args)]
    run_emulator_forever(args.flavor, args.host, args.port, args.api_key, **extra)
    return 0


def _service_account(args: argparse.Namespace) -> str:
    from pathlib import Path

    from skyroute.emulators.google_auth import write_service_account_file

    path = Path(args.service_account_file)
    if not path.exists():
        write_service_account_file(path, f"http://{args.host}:{args.port}/token")
    return str(path)


def _demo(args: argparse.Namespace) -> int:
    from skyroute.server.demo import run_scripted_demo

    return run_scripted_demo()


if __name__ == "__main__":
    raise SystemExit(main())
