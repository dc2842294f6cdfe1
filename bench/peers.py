"""The gateways bench/compare.py puts side by side: how each is installed, started and called.

skyroute runs from this repository's venv. The peers are installed on demand into a
git-ignored folder (default bench/.peers, or --peers-dir), each in its own environment, as
shared/design/peers.md describes:

- LiteLLM 1.110.2 in its own venv: the wheel plus its `[proxy]` extra's requirements by hand
  (the registry here cannot resolve the extra as published: `litellm-proxy` is missing and the
  `litellm-enterprise` / `litellm-proxy-extras` pins are not available, so those three are
  relaxed or dropped). Run with LITELLM_LOCAL_MODEL_COST_MAP=True, LITELLM_LOG=ERROR, no
  DATABASE_URL, a master key and num_retries 0.
- Portkey gateway 1.15.2 with npm, `@hono/node-server` pinned to 2.1.9 through `overrides`
  (1.19.x fails every stream with `TypeError: immutable`), started with node, NODE_ENV=production,
  routed with `x-portkey-provider: openai` and `x-portkey-custom-host`.

A peer that cannot be installed or started is reported and skipped; the run goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PEERS_DIR = REPO / "bench" / ".peers"
LITELLM_VERSION = "1.110.2"
PORTKEY_VERSION = "1.15.2"
HONO_NODE_SERVER = "2.1.9"
# Requirements of litellm[proxy] 1.110.2 that this registry cannot satisfy as written.
_LITELLM_RELAX = {
    "litellm-enterprise": "litellm-enterprise==0.1.83",
    "litellm-proxy-extras": "litellm-proxy-extras<=0.4.114.post1",
    "litellm-proxy": None,  # not published here; the litellm wheel carries litellm.proxy
}


@dataclass
class Gateway:
    """How to start one gateway and what a request to it looks like."""

    name: str
    version: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    headers: list[tuple[str, str]]  # besides Host, Content-Type and Content-Length
    notes: list[str] = field(default_factory=list)


def ensure_dir(peers_dir: Path) -> None:
    """The peers folder, git-ignored from inside (it holds venvs and node_modules)."""
    peers_dir.mkdir(parents=True, exist_ok=True)
    ignore = peers_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")


def _run(cmd: list[str], log: Path, timeout: float, cwd: Path | None = None) -> None:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, cwd=cwd, check=False
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}:\n" + "\n".join(tail))


# -- LiteLLM -----------------------------------------------------------------------------------


def install_litellm(peers_dir: Path, say: Any) -> Path:
    """The venv's python, LiteLLM installed in it (skipped when already there)."""
    venv = peers_dir / "litellm-venv"
    python = venv / "bin" / "python"
    marker = venv / f".litellm-{LITELLM_VERSION}-proxy"
    if marker.exists():
        return python
    ensure_dir(peers_dir)
    log = peers_dir / "litellm-install.log"
    say(f"installing LiteLLM {LITELLM_VERSION} into {venv} (log: {log})")
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], log, 120)
    dl = peers_dir / "dl"
    wheels = list(dl.glob(f"litellm-{LITELLM_VERSION}-*.whl"))
    if not wheels:
        _run(
            [
                str(python),
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "-d",
                str(dl),
                f"litellm=={LITELLM_VERSION}",
            ],
            log,
            300,
        )
        wheels = list(dl.glob(f"litellm-{LITELLM_VERSION}-*.whl"))
    wheel = wheels[0]
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(f"litellm-{LITELLM_VERSION}.dist-info/METADATA").decode()
    reqs = []
    for line in meta.splitlines():
        if not line.startswith("Requires-Dist:") or "extra == 'proxy'" not in line:
            continue
        req = line.split(":", 1)[1].split(";")[0].strip()
        marker_part = line.split(";", 1)[1]
        if "python_full_version >= '3.15'" in marker_part:
            continue
        name = req.split("=")[0].split("<")[0].split(">")[0].strip()
        if name in _LITELLM_RELAX:
            relaxed = _LITELLM_RELAX[name]
            if relaxed is None:
                continue
            req = relaxed
        reqs.append(req)
    req_file = peers_dir / "litellm-proxy-reqs.txt"
    req_file.write_text("\n".join(sorted(set(reqs))) + "\n")
    _run([str(python), "-m", "pip", "install", "-q", str(wheel), "-r", str(req_file)], log, 900)
    marker.write_text("ok\n")
    return python


def litellm(
    peers_dir: Path, tmp: Path, port: int, emu_port: int, model: str, keys: dict[str, str], say: Any
) -> Gateway:
    python = install_litellm(peers_dir, say)
    config = tmp / "litellm.yaml"
    config.write_text(
        f"""\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: http://127.0.0.1:{emu_port}/v1
      api_key: {keys["upstream"]}
litellm_settings:
  num_retries: 0
  request_timeout: 30
  telemetry: false
general_settings:
  master_key: {keys["master"]}
"""
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
        PYTHONUNBUFFERED="1",
        NO_DOCKER="1",
    )
    version = (
        subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        or LITELLM_VERSION
    )
    cmd = [
        str(python),
        "-m",
        "litellm.proxy.proxy_cli",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    return Gateway(
        name="LiteLLM",
        version=f"litellm {version} (proxy, 1 worker, its default uvicorn/h11)",
        cmd=cmd,
        env=env,
        port=port,
        headers=[("Authorization", f"Bearer {keys['master']}")],
    )


# -- Portkey -----------------------------------------------------------------------------------


def install_portkey(peers_dir: Path, say: Any) -> Path:
    root = peers_dir / "portkey"
    entry = root / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    hono = root / "node_modules" / "@hono" / "node-server" / "package.json"
    if (
        entry.exists()
        and hono.exists()
        and json.loads(hono.read_text())["version"] == HONO_NODE_SERVER
    ):
        return entry
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise RuntimeError("node/npm not installed")
    ensure_dir(peers_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(
        json.dumps(
            {
                "name": "skyroute-bench-portkey",
                "private": True,
                "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION},
                "overrides": {"@hono/node-server": HONO_NODE_SERVER},
            },
            indent=2,
        )
    )
    log = peers_dir / "portkey-install.log"
    say(f"installing Portkey gateway {PORTKEY_VERSION} into {root} (log: {log})")
    _run(["npm", "install", "--no-audit", "--no-fund"], log, 600, cwd=root)
    if json.loads(hono.read_text())["version"] != HONO_NODE_SERVER:
        raise RuntimeError("@hono/node-server override did not apply")
    return entry


def portkey(
    peers_dir: Path, tmp: Path, port: int, emu_port: int, model: str, keys: dict[str, str], say: Any
) -> Gateway:
    entry = install_portkey(peers_dir, say)
    node_version = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    env = dict(os.environ, NODE_ENV="production", TRUSTED_CUSTOM_HOSTS="127.0.0.1,localhost")
    return Gateway(
        name="Portkey",
        version=f"@portkey-ai/gateway {PORTKEY_VERSION} (@hono/node-server {HONO_NODE_SERVER}), "
        f"node {node_version}",
        cmd=["node", str(entry), f"--port={port}", "--headless"],
        env=env,
        port=port,
        headers=[
            ("Authorization", f"Bearer {keys['upstream']}"),
            ("x-portkey-provider", "openai"),
            ("x-portkey-custom-host", f"http://127.0.0.1:{emu_port}/v1"),
        ],
    )
