"""Read one build: its records, its Lab profile input and command, its worker summary."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_inferedgeforge.cli.common import add_build_dir, add_command, metadata_path, print_json
from pytest_inferedgeforge.cli.views import summary_text


def cmd_inspect_build(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.record import load_build_record
    from pytest_inferedgeforge.handoff.guard import handoff_artifact, is_build_record
    from pytest_inferedgeforge.handoff.lab import lab_profile_argv, lab_profile_input, shell_join
    from pytest_inferedgeforge.model.errors import ForgeError

    path = metadata_path(args)
    build_dir = path.parent
    record = load_build_record(build_dir, require_manifest=False, metadata_file=path)
    metadata, summary = record.metadata, record.run_summary
    if args.summary and not args.json:
        print(summary_text(metadata, summary, record.readiness))
        return 0
    artifact, refused = None, None
    if is_build_record(path):
        try:
            artifact = handoff_artifact(record)
        except ForgeError as exc:
            refused = str(exc)
    has_lab = metadata.lab_compat is not None and refused is None
    view = {
        "build": metadata.build.model_dump(mode="json", exclude_none=True),
        "source_model": metadata.source_model.model_dump(mode="json", exclude_none=True),
        "artifacts": [a.model_dump(mode="json", exclude_none=True) for a in metadata.artifacts],
        "handoff": metadata.handoff.model_dump(mode="json", exclude_none=True),
        "preset_snapshot": metadata.preset_snapshot,
        "lab_profile_input": lab_profile_input(metadata, artifact) if has_lab else None,
        "lab_profile_command": shell_join(lab_profile_argv(metadata, artifact=artifact)) if has_lab else None,
        "run_summary": summary.model_dump(mode="json", exclude_none=True) if summary else None,
    }
    if refused is not None:
        view["handoff_refused"] = refused
    if record.manifest_or_none is not None:
        report = record.verification
        view["verification"] = {"valid": report.valid, "errors": [i.line() for i in report.errors]}
        view["compare_readiness"] = {"state": record.readiness.state, "reason": record.readiness.reason}
    print_json(view)
    return 0


def cmd_show_lab_profile_input(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.guard import verified_artifact
    from pytest_inferedgeforge.handoff.lab import lab_profile_input
    from pytest_inferedgeforge.model.records.build import load_metadata

    path = metadata_path(args)
    print_json(lab_profile_input(load_metadata(path), verified_artifact(path)))
    return 0


def cmd_show_lab_profile_command(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.guard import verified_artifact
    from pytest_inferedgeforge.handoff.lab import lab_profile_argv, shell_join
    from pytest_inferedgeforge.model.records.build import load_metadata

    path = metadata_path(args)
    argv = lab_profile_argv(load_metadata(path), artifact=verified_artifact(path))
    if args.json:
        print_json({"command": shell_join(argv), "argv": argv})
    else:
        print(shell_join(argv))
    return 0


def cmd_show_worker_summary(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.guard import verified_artifact
    from pytest_inferedgeforge.handoff.lab import worker_runtime_summary
    from pytest_inferedgeforge.model.jsonio import read_json_object

    path = metadata_path(args).resolve()
    artifact = verified_artifact(path)
    manifest_path = path.parent / "manifest.json"
    manifest = read_json_object(manifest_path, "Build manifest") if manifest_path.exists() else None
    summary = worker_runtime_summary(read_json_object(path, "Build metadata"), manifest, metadata_path=path,
                                     manifest_path=manifest_path if manifest is not None else None)
    if artifact is not None:
        summary["artifact_path"] = str(artifact)
    print_json(summary)
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "inspect-build", cmd_inspect_build, "show a build's records, handoff and run status")
    add_build_dir(p)
    p.add_argument("--summary", action="store_true", help="print a text report instead of JSON")

    for name, handler, text in (
        ("show-lab-profile-input", cmd_show_lab_profile_input, "print the InferEdgeLab profile input JSON"),
        ("show-lab-profile-command", cmd_show_lab_profile_command, "print the InferEdgeLab profile command"),
        ("show-worker-summary", cmd_show_worker_summary, "print the worker/runtime summary (Lab worker, Runtime)"),
    ):
        p = add_command(sub, name, handler, text)
        add_build_dir(p)
