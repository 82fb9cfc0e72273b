"""``toolchain list|install``: each backend's availability, and the toolchains Forge installs itself."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_inferedgeforge.cli.common import add_command, print_json, status
from pytest_inferedgeforge.model.errors import ForgeError


def cmd_toolchain_list(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.toolchains import availability, backend_names

    rows: list[dict[str, Any]] = []
    for name in backend_names():
        found = availability(name)
        rows.append({"backend": name, "available": found.ok, "versions": found.versions,
                     "location": found.location or "this environment", "reason": found.reason})
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        versions = ", ".join(f"{k} {v}" for k, v in row["versions"].items() if k not in ("env", "trtexec"))
        print(f"{row['backend']:<12} {'available' if row['available'] else 'unavailable':<12} {row['location']}")
        print(f"{'':<12} {versions or row['reason']}")
    return 0


def cmd_toolchain_install(args: argparse.Namespace) -> int:
    import time

    from pytest_inferedgeforge.engine.toolchains import install

    started = time.perf_counter()
    with status(f"Installing the {args.backend} toolchain...", args) as update:
        found = install(args.backend, update)
    if not found.ok:
        raise ForgeError(f"{args.backend} toolchain installed but still unavailable: {found.reason}")
    if args.json:
        print_json({"backend": args.backend, "location": found.location, "versions": found.versions,
                    "seconds": round(time.perf_counter() - started, 1)})
        return 0
    versions = ", ".join(f"{k} {v}" for k, v in found.versions.items() if k != "env")
    print(f"Installed {args.backend} toolchain in {found.location} ({versions}) in {time.perf_counter() - started:.1f}s")
    return 0


def register(sub: Any) -> None:
    toolchain = sub.add_parser("toolchain", help="list or install backend toolchains (rknn-toolkit2 has its own venv)",
                               description="List or install backend toolchains.")
    actions = toolchain.add_subparsers(dest="toolchain_command", metavar="ACTION", required=True)
    add_command(actions, "list", cmd_toolchain_list, "show each backend's availability, versions and location")
    p = add_command(actions, "install", cmd_toolchain_install, "create and populate a toolchain environment",
             "Install a backend toolchain. Only rknn needs this: rknn-toolkit2 pins old numpy/onnx/torch,\n"
             "so it gets its own venv at $FORGE_RKNN_ENV, else $FORGE_TOOLCHAINS_DIR/rknn, else the user\n"
             "cache dir. It downloads about 5.6 GB (torch with CUDA wheels).")
    p.add_argument("backend", metavar="BACKEND", help="backend whose toolchain to install (today: rknn)")

