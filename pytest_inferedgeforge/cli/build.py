"""``build``: model x preset -> a build directory (or its plan, with --dry-run)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.cli.common import (
    UsageError,
    add_command,
    add_presets_root,
    output_root,
    presets_root,
    print_json,
    status,
)
from pytest_inferedgeforge.cli.signing import OMS_HELP
from pytest_inferedgeforge.model.errors import ForgeError

if TYPE_CHECKING:
    from pytest_inferedgeforge.engine.shared_cache import SharedCache
    from pytest_inferedgeforge.engine.signing import SigningKey


def parse_input_shapes(values: list[str] | None) -> dict[str, list[int]]:
    from pytest_inferedgeforge.model.onnx_model import parse_input_shape

    shapes: dict[str, list[int]] = {}
    for value in values or []:
        name, dims = parse_input_shape(value)
        if name in shapes:
            raise ForgeError(f"--input-shape given twice for input '{name}'")
        shapes[name] = dims
    return shapes


def parse_input_values(values: list[str] | None) -> dict[str, Any] | None:
    from pytest_inferedgeforge.model.inputs import parse_value_rule

    rules: dict[str, Any] = {}
    for value in values or []:
        name, rule = parse_value_rule(value)
        if name in rules:
            raise ForgeError(f"--input-value given twice for input '{name}'")
        rules[name] = rule
    return rules or None


def _dry_run(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.plan import plan_build
    from pytest_inferedgeforge.engine.presets import load_preset
    from pytest_inferedgeforge.engine.toolchains import artifact_filename, availability
    from pytest_inferedgeforge.model.hashing import file_digest
    from pytest_inferedgeforge.model.layout import build_dir_name

    preset = load_preset(args.preset, presets_root(args))
    model, output = Path(args.model), output_root(args, "output")
    build_dir = output / build_dir_name(model, preset.target, preset.backend, preset.name)
    shapes: dict[str, list[int]] | None = None
    batch: int | None = None
    height: int | None = None
    width: int | None = None
    notes: list[str] = []
    if model.exists():
        dataset, calibration = dataset_options(args)
        plan = plan_build(model, preset, output, input_shapes=parse_input_shapes(args.input_shape),
                          input_values=parse_input_values(args.input_value), input_dataset=dataset,
                          calibration_dataset=calibration)
        shapes = plan.input_shapes
        build_dir = output / plan.build_dir.name  # as given, like v0.1's preview (a dynamic model's shapes named)
        batch, height, width = plan.shape_context
    else:
        notes.append(f"model file not found: {model}; shapes and hash are unknown until it exists")
    artifact = str(build_dir / artifact_filename(preset.backend))
    toolchain = availability(preset.backend)
    print_json({
        "model": args.model,
        "preset": preset.name,
        "backend": preset.backend,
        "target": preset.target,
        "artifact_format": preset.artifact_format,
        "source_model_sha256": file_digest(model) if model.is_file() else None,
        "artifact_path_preview": artifact,
        "metadata_path_preview": str(build_dir / "metadata.json"),
        "run_summary_path_preview": str(build_dir / "run_summary.json"),
        "lab_profile_preview": {
            "engine": preset.backend, "device": preset.target, "precision": preset.precision,
            "engine_path": artifact, "runtime_artifact_path": artifact,
            "requested_batch": batch, "requested_height": height, "requested_width": width,
        },
        "build_dir_preview": str(build_dir),
        "precision": preset.precision,
        "input_shapes": shapes,
        "toolchain": {"available": toolchain.ok, "reason": toolchain.reason, "versions": toolchain.versions},
        "notes": notes,
    })
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)
    from pytest_inferedgeforge.engine.build import build
    from pytest_inferedgeforge.engine.plan import plan_build
    from pytest_inferedgeforge.engine.presets import load_preset

    preset = load_preset(args.preset, presets_root(args))
    dataset, calibration = dataset_options(args)
    plan = plan_build(Path(args.model), preset, output_root(args, "output"), input_shapes=parse_input_shapes(args.input_shape),
                      input_values=parse_input_values(args.input_value), input_dataset=dataset,
                      calibration_dataset=calibration)
    signer, shared = signing_and_cache(args)
    with status(f"Building {preset.name}...", args) as update:
        outcome = build(plan, progress=lambda message: update(f"{preset.name}: {message}"), force=args.force,
                        signer=signer, shared=shared)
    record = outcome.record
    if args.json:
        print_json({"cached": outcome.cached, "reason": outcome.reason, "build_source": outcome.source,
                    "pushed": outcome.pushed, "build_dir": str(record.build_dir),
                     "metadata_path": str(record.metadata_path), "manifest_path": str(record.manifest_path),
                     "artifact_path": str(record.artifact_path), "build_id": record.manifest.build.build_id,
                     "build_key": record.manifest.build.build_key,
                     "artifact_sha256": record.manifest.artifact.sha256,
                     "source_sha256": record.manifest.source_model.sha256,
                     "ready": record.metadata.handoff.ready})
        return 0
    print("Build completed")
    print(f"Preset   : {preset.name}")
    print(f"Backend  : {preset.backend}")
    print(f"Target   : {preset.target}")
    print(f"Artifacts: {len(record.metadata.artifacts)}")
    print(f"Metadata : {record.metadata_path}")
    print(f"Artifact : {record.artifact_path}")
    print(f"SHA-256  : {record.manifest.artifact.sha256}")
    print(f"Cache    : {'hit' if outcome.cached else 'miss'} ({outcome.reason})")
    print(f"Source   : {outcome.source}")
    if outcome.pushed:
        print(f"Push     : {outcome.pushed}")
    return 0


def dataset_options(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """``--dataset`` (smoke run, the inputs parity starts from) and ``--calibration-dataset``, resolved."""
    calibration = getattr(args, "calibration_dataset", None)
    return (Path(args.dataset).resolve() if args.dataset else None,
            Path(calibration).resolve() if calibration else None)


def add_input_options(p: argparse.ArgumentParser) -> None:
    """``--input-shape`` and ``--input-value``, which :func:`parse_input_shapes` and :func:`parse_input_values` read."""
    p.add_argument("--input-shape", action="append", metavar="NAME:1x3x224x224",
                   help="concrete shape for an input with dynamic dims (repeatable; trtexec --shapes convention)")
    p.add_argument("--input-value", action="append", metavar="NAME=RULE",
                   help="synthetic values of an input for calibration, smoke run and parity: NAME=16000 (constant), "
                        "NAME=8000|16000 (choice) or NAME=-1..1 (range) (repeatable)")


def add_dataset_options(p: argparse.ArgumentParser, *, calibrate: bool = True) -> None:
    """The real-data options of the commands that build (docs/experiments.md#real-data)."""
    p.add_argument("--dataset", default=None, metavar="DIR",
                   help="evaluation inputs: .npy/.npz, image or 16-bit PCM .wav files (the smoke run feeds the first)")
    if calibrate:
        p.add_argument("--calibration-dataset", default=None, metavar="DIR",
                       help="int8 calibration inputs, same kinds as --dataset (default: the preset's "
                            "calibration.dataset, else seeded synthetic, recorded as a warning)")


def signing_and_cache(args: argparse.Namespace) -> tuple[SigningKey | None, SharedCache | None]:
    """The signer of ``--sign-key`` and the shared cache of ``--cache`` (with ``--trust`` keys), or None."""
    from pytest_inferedgeforge.engine.shared_cache import connect
    from pytest_inferedgeforge.engine.signing import load_signing_key

    if args.cache_push and not args.cache:
        raise UsageError("--cache-push needs --cache URL")
    if args.cache_push and not args.sign_key:
        raise UsageError("--cache-push needs --sign-key KEY: the shared cache serves only signed builds")
    if args.oms and not args.sign_key:
        raise UsageError("--oms needs --sign-key KEY")
    signer = load_signing_key(Path(args.sign_key), oms=args.oms) if args.sign_key else None
    shared = connect(args.cache, [Path(path) for path in args.trust or []], args.cache_push) if args.cache else None
    return signer, shared


def register(sub: Any) -> None:
    p = add_command(sub, "build", cmd_build, "build a model with a preset (cached by content)",
             "Build MODEL with PRESET into OUTPUT/<stem>__<target>__<backend>__<preset>/.\n"
             "A build with an unchanged build key is reused after its hashes verify.")
    p.add_argument("--model", required=True, help="source ONNX model")
    p.add_argument("--preset", required=True, help="preset id, backend/name")
    p.add_argument("--output", "--dir", dest="output", default=None, metavar="DIR",
                   help="output root for build directories (default: the project's forge_output, else ./builds)")
    p.add_argument("--dry-run", action="store_true", help="print the build plan as JSON; write nothing")
    add_input_options(p)
    add_dataset_options(p)
    p.add_argument("--force", action="store_true", help="rebuild even when a verified cached build exists")
    add_presets_root(p)
    add_sharing_options(p)


def add_sharing_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("signing and the shared cache (docs/provenance.md, docs/cache.md)")
    group.add_argument("--sign-key", metavar="KEY", default=None,
                       help="sign the build's provenance with this private key (writes provenance.dsse.json)")
    group.add_argument("--oms", action="store_true", help=OMS_HELP)
    group.add_argument("--cache", metavar="URL", default=None,
                       help="shared cache: s3://bucket/prefix (endpoint and credentials from AWS_ENDPOINT_URL, "
                            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or a directory; a local miss pulls from it")
    group.add_argument("--trust", action="append", metavar="PUB",
                       help="public key whose signed cache entries are trusted (repeatable; a pull needs one)")
    group.add_argument("--cache-push", action="store_true",
                       help="push the build to the shared cache (needs --sign-key)")
