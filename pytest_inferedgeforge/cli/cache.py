"""``cache ls|pull|push|gc|check``: the shared build cache by hand (docs/cache.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import UsageError, add_build_dir, add_command, build_arg, output_root, print_json, status
from pytest_inferedgeforge.model.errors import ForgeError


def _cache(args: argparse.Namespace, push: bool = False) -> Any:
    from pytest_inferedgeforge.engine.shared_cache import connect

    return connect(args.cache, [Path(path) for path in getattr(args, "trust", None) or []], push, args.timeout)


def cmd_cache_ls(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.model.records.cache import CacheEntry

    cache = _cache(args)
    rows = []
    for key, entry in cache.entries():
        if isinstance(entry, CacheEntry):
            rows.append({"key": key, "build_dir_name": entry.build_dir_name, "model": entry.model,
                         "preset": entry.preset, "backend": entry.backend, "target": entry.target,
                         "files": len(entry.files), "size_bytes": sum(item.size_bytes for item in entry.files),
                         "pushed_at": entry.pushed_at, "pushed_from": entry.pushed_from,
                         "keyids": [str(item.get("keyid")) for item in entry.envelope.get("signatures", [])
                                    if isinstance(item, dict)]})
        else:
            rows.append({"key": key, "error": entry.reason})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"{cache.url}: no entries")
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
    from pytest_inferedgeforge.engine.shared_cache import pull_into, verified_entry

    if not args.trust:
        raise UsageError("cache pull needs --trust PUB: a pulled build is used only when a trusted key signed it")
    cache = _cache(args)
    verified = verified_entry(cache, args.key)  # the directory name comes from the signed manifest, not the entry
    if verified is None:
        raise ForgeError(f"{cache.url}: no entry for build key {args.key}")
    root = output_root(args, "output")
    root.mkdir(parents=True, exist_ok=True)
    build_dir = root / verified.build_dir_name
    with status(f"Pulling {verified.build_dir_name}...", args), build_lock(build_dir):
        kept = build_dir.exists()
        pull_into(cache, verified, build_dir)
    if args.json:
        print_json({"key": args.key, "build_dir": str(build_dir), "verified": True, "kept_existing": kept})
    elif kept:
        print(f"{build_dir} already holds this build (verified); kept as it is, its runs included")
    else:
        print(f"Pulled {build_dir} (signature and every digest verified)")
    return 0


def cmd_cache_push(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.shared_cache import push

    build_dir = build_arg(args)
    if not build_dir.is_dir():
        raise ForgeError(f"Build directory not found: {build_dir}")
    with status(f"Pushing {build_dir.name}...", args):
        cache = _cache(args, push=True)
        result = push(cache, build_dir)
    if args.json:
        print_json({"key": result.key, "uploaded_blobs": result.uploaded, "uploaded_bytes": result.bytes_uploaded,
                    "entry_written": result.entry_written, "repaired_blobs": result.repaired})
        return 0
    if result.entry_written:
        print(f"Pushed {build_dir.name} as {result.key} ({result.uploaded} new blob(s), {result.bytes_uploaded} bytes)")
    else:
        print(f"{result.key} is already in {cache.url}; its entry is kept")
    if result.repaired:
        print(f"Put back {result.repaired} blob(s) its entry named that were missing from the cache")
    return 0


def cmd_cache_gc(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.cache_gc import collect_garbage

    plan = collect_garbage(_cache(args), args.grace_s, dry_run=args.dry_run)
    if args.json:
        print_json({"would_delete" if args.dry_run else "deleted": plan.doomed, "kept_young": plan.young,
                    "kept_for_unparsed_entries": plan.protected})
        return 0
    print(f"{'Would delete' if args.dry_run else 'Deleted'} {len(plan.doomed)} unreferenced blob(s)")
    for path in plan.doomed:
        print(f"  {path}")
    print(f"Kept {len(plan.young)} unreferenced blob(s) younger than {args.grace_s:g} s")
    for key, paths in plan.protected.items():
        print(f"Kept {len(paths)} blob(s) named by {key[:16]}..., an entry this Forge cannot parse")
    return 0


def cmd_cache_check(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.cache_gc import check_entries

    checks = check_entries(_cache(args))
    if args.json:
        print_json([{"key": check.key, "status": check.status, "missing": check.missing, "reason": check.reason}
                    for check in checks])
    else:
        for check in checks:
            detail = f"missing blob(s) of {', '.join(check.missing)}" if check.missing else check.reason or ""
            print(f"{check.key[:16]}  {check.status.upper()}{'  ' + detail if detail else ''}")
        failed = sum(check.failed for check in checks)
        print(f"{len(checks)} entries, {failed} dangling or unreadable")
    return 1 if any(check.failed for check in checks) else 0


def _cache_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", required=True, metavar="URL",
                   help="s3://bucket/prefix (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
                        "AWS_SECRET_ACCESS_KEY) or a directory")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds an S3 read may stall, and the window for retries (default: FORGE_CACHE_TIMEOUT, "
                        "else 30; connecting: at most 5)")


def register(sub: Any) -> None:
    cache = sub.add_parser("cache", help="list, pull, push, check or clean the shared build cache",
                           description="The shared build cache: signed entries at ac/<build key>, files at "
                                       "cas/sha256/<digest>. See docs/cache.md.")
    actions = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    p = add_command(actions, "ls", cmd_cache_ls, "list the cache's entries (key, build, files, signer key ids)")
    _cache_option(p)
    p = add_command(actions, "pull", cmd_cache_pull, "pull one build by its build key and verify it",
                    "Download the entry's files into a temporary directory, verify every digest, the signature\n"
                    "against --trust keys and the whole record, then publish it under the output root, named as\n"
                    "its signed manifest says. A build of this key already there is kept (runs included); one of\n"
                    "another key is never replaced.")
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
    p.add_argument("--dry-run", action="store_true", help="show the same decisions; delete nothing")
    p = add_command(actions, "check", cmd_cache_check, "list entries whose blobs are missing (exit 1 when any)")
    _cache_option(p)
