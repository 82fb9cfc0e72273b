"""Agent manifests derived from a build manifest."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import UsageError, add_build_dir, add_command, manifest_path, print_json, print_report
from pytest_inferedgeforge.model.argtypes import count_at_least
from pytest_inferedgeforge.model.errors import ForgeError


def cmd_create_agent_manifest(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.agent import create_agent_manifest
    from pytest_inferedgeforge.handoff.guard import verified_artifact
    from pytest_inferedgeforge.model.jsonio import read_json_object

    guard = None
    if args.guard_policy is not None:
        try:
            guard = json.loads(args.guard_policy)
        except json.JSONDecodeError as exc:
            raise ForgeError(f"--guard-policy is not valid JSON: {exc}") from exc
        if not isinstance(guard, dict):
            raise ForgeError("--guard-policy must decode to a JSON object")
    manifest_file = manifest_path(args)
    artifact = verified_artifact(manifest_file)
    manifest = read_json_object(manifest_file, "Build manifest")
    if artifact is not None and args.runtime_artifact_path is None:
        args.runtime_artifact_path = str(artifact)
    payload = create_agent_manifest(
        manifest, str(manifest_file), agent_id=args.agent_id,
        agent_type=args.agent_type, priority=args.priority, latency_budget_ms=args.latency_budget_ms,
        deadline_ms=args.deadline_ms, input_type=args.input_type, output_type=args.output_type,
        fallback_mode=args.fallback_mode, required_backend=args.required_backend, device_target=args.device_target,
        precision=args.precision, runtime_artifact_path=args.runtime_artifact_path,
        tool_schema_path=args.tool_schema_path, telemetry_contract_version=args.telemetry_contract_version,
        guard_policy=guard)
    if args.output is None:
        print_json(payload)
        return 0
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print_json({"written": str(output)})
    else:
        print(f"Agent manifest written: {output}")
    return 0


def cmd_validate_agent_manifest(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.agent import validate_agent_manifest
    from pytest_inferedgeforge.model.jsonio import read_json_object

    given = [value for value in (args.agent_manifest, args.legacy_agent_manifest) if value]
    if len(given) != 1:
        raise UsageError("give the agent manifest file once (AGENT_MANIFEST)")
    path = Path(given[0])
    report = validate_agent_manifest(read_json_object(path, "Agent manifest"), path)
    return print_report("Agent manifest validation", report, args.json)


def register(sub: Any) -> None:
    from pytest_inferedgeforge.model.defaults import AGENT_TYPES, FALLBACK_MODES, TELEMETRY_VERSION

    p = add_command(sub, "create-agent-manifest", cmd_create_agent_manifest, "derive an agent manifest from a build manifest")
    add_build_dir(p, "--manifest")
    p.add_argument("--agent-id", required=True)
    p.add_argument("--agent-type", required=True, choices=AGENT_TYPES)
    p.add_argument("--priority", required=True, type=int, help="0..100")
    p.add_argument("--latency-budget-ms", required=True, type=count_at_least(1))
    p.add_argument("--deadline-ms", required=True, type=count_at_least(1))
    p.add_argument("--input-type", required=True)
    p.add_argument("--output-type", required=True)
    p.add_argument("--fallback-mode", required=True, choices=FALLBACK_MODES)
    p.add_argument("--required-backend", default=None, help="override the manifest's runtime.engine")
    p.add_argument("--device-target", default=None, help="override the manifest's runtime.device")
    p.add_argument("--precision", default=None, help="override the manifest's runtime.precision")
    p.add_argument("--runtime-artifact-path", default=None, help="override the manifest's artifact path")
    p.add_argument("--tool-schema-path", default=None)
    p.add_argument("--telemetry-contract-version", default=TELEMETRY_VERSION)
    p.add_argument("--guard-policy", default=None, help="JSON object string")
    p.add_argument("--output", default=None, help="write here instead of printing")

    p = add_command(sub, "validate-agent-manifest", cmd_validate_agent_manifest, "validate an agent manifest")
    p.add_argument("agent_manifest", nargs="?", metavar="AGENT_MANIFEST", help="the agent manifest JSON file")
    p.add_argument("--manifest", dest="legacy_agent_manifest", default=None, help=argparse.SUPPRESS)
