"""Check and reproduce records: validate-manifest, verify, schema, rebuild-from-manifest."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import (
    add_build_dir,
    add_command,
    add_presets_root,
    manifest_path,
    presets_root,
    print_json,
    print_report,
    status,
)
from pytest_inferedgeforge.model.errors import ForgeError


def cmd_validate_manifest(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.verify.manifest import validate_manifest_file

    path = manifest_path(args)
    return print_report("Manifest validation", validate_manifest_file(path), args.json)


def cmd_verify(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.model.keys import load_public_keys
    from pytest_inferedgeforge.verify.build_dir import verify_build_dir

    keys = load_public_keys([Path(path) for path in args.key or []])
    reports = [verify_build_dir(directory, keys, require_signature=args.require_signature,
                                allow_unsigned_runs=args.allow_unsigned_runs)
               for directory in _build_dirs(args)]
    if args.json:
        print_json([report.to_dict() for report in reports])
    else:
        for report in reports:
            verdict = "ok" if report.valid else "FAILED"
            print(f"{verdict} {report.target} ({len(report.errors)} error(s), {len(report.warnings)} warning(s))")
            for issue in report.issues:
                print(f"  {issue.line()}")
    return 0 if all(report.valid for report in reports) else 1


def _build_dirs(args: argparse.Namespace) -> list[Path]:
    """Each argument is a build directory (one with records) or a root, walked for the build directories under it
    (its other folders, such as compare plots, are not builds and are skipped). A root with no build at all is an
    error: a gate that checked nothing must not pass."""
    from pytest_inferedgeforge.engine.catalog import find_build_dirs

    found: list[Path] = []
    for text in args.paths:
        path = Path(text)
        if not path.is_dir():
            raise ForgeError(f"Build directory not found: {path}")
        if (path / "metadata.json").exists() or (path / "manifest.json").exists():
            found.append(path)
            continue
        under = find_build_dirs(path)
        if not under:
            raise ForgeError(f"{path} holds no build directory (no metadata.json or manifest.json under it); "
                             "nothing to verify")
        found.extend(under)
    return found


def cmd_schema(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.model.records.schemas import export_schemas, schema_names, schema_text

    if args.export:
        written = [str(path) for path in export_schemas(Path(args.export))]
        print_json(written) if args.json else print("\n".join(written))
        return 0
    if args.name is None:
        print_json(list(schema_names())) if args.json else print("\n".join(schema_names()))
        return 0
    if args.name not in schema_names():
        raise ForgeError(f"unknown schema '{args.name}'; choose from {', '.join(schema_names())}")
    print(schema_text(args.name), end="")
    return 0


def cmd_rebuild_from_manifest(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.reproduce import rebuild_from_manifest

    manifest = manifest_path(args)
    with status("Rebuilding from manifest...", args):
        result = rebuild_from_manifest(manifest, output=Path(args.output) if args.output else None,
                                       presets_root=presets_root(args),
                                       use_current_preset=args.use_current_preset,
                                       allow_source_change=args.allow_source_change)
    report = result.report
    if args.json:
        print_json(report.model_dump(mode="json"))
        return 0
    record = result.outcome.record
    print("Rebuild completed")
    print(f"Manifest : {manifest}")
    print(f"Preset   : {record.manifest.build.preset_name} (from the {report.preset.used} preset)")
    print(f"Model    : {report.source.path}")
    print(f"Output   : {record.build_dir.parent}")
    print(f"Metadata : {record.metadata_path}")
    print(f"Verdict  : {report.verdict}")
    if report.functional is not None:
        functional = report.functional
        print("Parity   : " + (f"min cosine {functional.min_cosine:.8f}, max abs error {functional.max_abs_error:.3g}"
                              if functional.min_cosine is not None and functional.max_abs_error is not None
                              else "; ".join(functional.failures)))
    for reason in report.reasons:
        print(f"  - {reason}")
    if report.preset.drifted:
        print("Preset drift (recorded snapshot -> current file):")
        for line in report.preset.diff:
            print(f"  {line}")
    print(f"Report   : {result.report_path}")
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "validate-manifest", cmd_validate_manifest,
             "check a manifest: original rules, JSON Schema, and every hash against the files")
    add_build_dir(p, "--manifest", "--build-dir")

    p = add_command(sub, "verify", cmd_verify,
                    "verify whole build records (manifest, metadata, provenance, hashes, signature); exit 1 on any error")
    p.add_argument("paths", nargs="+", metavar="BUILD_DIR_OR_ROOT",
                   help="build directories, or roots to walk for the build directories under them")
    p.add_argument("--key", action="append", metavar="PUB",
                   help="trusted public key (repeatable): each build, and each of its runs, must carry a signature "
                        "that verifies with one of them")
    p.add_argument("--require-signature", action="store_true",
                   help="fail unsigned builds (with --key: signed by a given key; without: a well-formed signature "
                        "over the provenance, whose signer only --key can establish)")
    p.add_argument("--allow-unsigned-runs", action="store_true",
                   help="with --key, report a run no trusted key signed as an untrusted WARNING instead of an ERROR")

    p = add_command(sub, "schema", cmd_schema, "list, print or export the JSON Schemas of Forge's files")
    p.add_argument("name", nargs="?", default=None, help="schema name; omit to list them")
    p.add_argument("--export", metavar="DIR", default=None, help="write every schema into DIR")

    p = add_command(sub, "rebuild-from-manifest", cmd_rebuild_from_manifest,
             "rebuild a recorded build and write a reproducibility verdict",
             "Rebuild from the manifest's recorded preset snapshot into a separate root (default: a\n"
             "'rebuilds' directory beside the original output root), then compare: bitwise (same sha256),\n"
             "functional (outputs agree within the precision's thresholds) or not reproducible.")
    add_build_dir(p)
    p.add_argument("--output", default=None, help="output root for the rebuild (never the original build dir)")
    p.add_argument("--use-current-preset", action="store_true",
                   help="rebuild from the current preset file instead of the recorded snapshot")
    p.add_argument("--allow-source-change", action="store_true",
                   help="rebuild even if the source model's sha256 differs from the manifest")
    add_presets_root(p)
