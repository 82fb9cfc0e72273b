"""``cache ls|pull|push|gc``: the shared build cache by hand (docs/cache.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import UsageError, add_build_dir, add_command, build_arg, output_root, print_json, status
from pytest_inferedgeforge.model.errors import ForgeError


def _cache(args: argparse.Namespace, push: bool = False) -> Any:
    from pytest_inferedgeforge.engine.shared_cache import connect

    return connect(args.cache, [Path(path) for path in getattr(args, "trust", None) or []], push)


def cmd_cache_ls(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.model.records.cache import CacheEntry

    rows = []
    for key, entry in _cache(args).entries():
        if isinstance(entry, CacheEntry):
            rows.append({"key": key, "build_dir_name": entry.build_dir_name, "model": entry.model,
                         "preset": entry.preset, "backend": entry.backend, "target": entry.target,
                         "files": len(entry.files), "size_bytes": sum(item.size_bytes for item in entry.files),
                         "pushed_at": entry.pushed_at, "pushed_from": entry.pushed_from,
                         "keyids": [str(item.get("keyid")) for item in entry.envelope.get("signatures", [])
                                    if isinstance(item, dict)]})
        else:
            rows.append({"key": key, "error": entry})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"{args.cache}: no entries")
    for row in rows:
        if "error" in row:
            print(f"{row['key'][:16]}  UNREADABLE: {row['error']}")
            continue
        print(f"{row['key'][:16]}  {row['build_dir_name']}  {row['files']} files, {row['size_bytes']} bytes, "
              f"pushed {row['pushed_at']} from {row['pushed_from']}, key id(s) "
              f"{', '.join(keyid[:12] for keyid in row['keyids'])}")
    return 0


def cmd_cache_pull(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.publish import build_lock
    from pytest_inferedgeforge.engine.shared_cache import pull
    from pytest_inferedgeforge.model.containment import check_component

    if not args.trust:
        raise UsageError("cache pull needs --trust PUB: a pulled build is used only when a trusted key signed it")
    cache = _cache(args)
    entry = cache.read_entry(args.key)
    if entry is None:
        raise ForgeError(f"{args.cache}: no entry for build key {args.key}")
    root = output_root(args, "output")
    root.mkdir(parents=True, exist_ok=True)
    build_dir = root / check_component(entry.build_dir_name, "build directory name")
    with status(f"Pulling {entry.build_dir_name}...", args), build_lock(build_dir):
        pull(cache, args.key, build_dir)
    if args.json:
        print_json({"key": args.key, "build_dir": str(build_dir), "verified": True})
    else:
        print(f"Pulled {build_dir} (signature and every digest verified)")
    return 0


def cmd_cache_push(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.shared_cache import push

    build_dir = build_arg(args)
    if not build_dir.is_dir():
        raise ForgeError(f"Build directory not found: {build_dir}")
    with status(f"Pushing {build_dir.name}...", args):
        result = push(_cache(args, push=True), build_dir)
    if args.json:
        print_json({"key": result.key, "uploaded_blobs": result.uploaded, "uploaded_bytes": result.bytes_uploaded,
                    "entry_written": result.entry_written})
    elif result.entry_written:
        print(f"Pushed {build_dir.name} as {result.key} ({result.uploaded} new blob(s), {result.bytes_uploaded} bytes)")
    else:
        print(f"{result.key} is already in {args.cache}; its entry is kept")
    return 0


def cmd_cache_gc(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.shared_cache import collect_garbage

    doomed = collect_garbage(_cache(args), args.grace_s, dry_run=args.dry_run)
    if args.json:
        print_json({"deleted" if not args.dry_run else "would_delete": doomed})
    else:
        verb = "Would delete" if args.dry_run else "Deleted"
        print(f"{verb} {len(doomed)} unreferenced blob(s)")
        for path in doomed:
            print(f"  {path}")
    return 0


def _cache_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", required=True, metavar="URL",
                   help="s3://bucket/prefix (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
                        "AWS_SECRET_ACCESS_KEY) or a directory")


def register(sub: Any) -> None:
    cache = sub.add_parser("cache", help="list, pull, push or clean the shared build cache",
                           description="The shared build cache: signed entries at ac/<build key>, files at "
                                       "cas/sha256/<digest>. See docs/cache.md.")
    actions = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    p = add_command(actions, "ls", cmd_cache_ls, "list the cache's entries (key, build, files, signer key ids)")
    _cache_option(p)
    p = add_command(actions, "pull", cmd_cache_pull, "pull one build by its build key and verify it",
                    "Download the entry's files into a temporary directory, verify every digest, the signature\n"
                    "against --trust keys and the whole record, then publish it under the output root.")
    p.add_argument("key", metavar="KEY", help="build key (see 'cache ls')")
    _cache_option(p)
    p.add_argument("--trust", action="append", metavar="PUB", help="trusted public key (repeatable; required)")
    p.add_argument("--output", "--dir", dest="output", default=None, metavar="DIR",
                   help="output root (default: the project's forge_output, else ./builds)")
    p = add_command(actions, "push", cmd_cache_push, "push a signed, verified build (create-only)")
    add_build_dir(p)
    _cache_option(p)
    p = add_command(actions, "gc", cmd_cache_gc, "delete blobs that no entry names")
    _cache_option(p)
    p.add_argument("--grace-s", type=float, default=3600.0, metavar="S",
                   help="keep unreferenced blobs younger than S seconds: a push in flight writes blobs before its "
                        "entry (default: 3600)")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
