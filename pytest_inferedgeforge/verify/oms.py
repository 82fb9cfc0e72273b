"""The optional OpenSSF model-signing (OMS) signature of a build directory, ``model.sig`` (docs/provenance.md#oms).

For interoperability with the OpenSSF ``model_signing`` tools: they verify a
build directory Forge signed, and Forge verifies theirs. It covers every file of
the build but what runs add later (``runs/``, run summaries, evidence), which is
why files added after signing are allowed and a changed or removed one is not.
Needs the ``oms`` extra (``model_signing``, pinned); without it a present
signature is reported as not checked, in those words.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_inferedgeforge.model.errors import first_line
from pytest_inferedgeforge.model.layout import (
    ACCURACY_EVIDENCE_FILE,
    REPRODUCIBILITY_FILE,
    RESULTS_DIR,
    RUN_SUMMARY_FILE,
    RUNS_DIR,
    SIGNATURE_FILE,
)
from pytest_inferedgeforge.verify.manifest import Issue

if TYPE_CHECKING:
    from securesystemslib.signer import Key

OMS_FILE = "model.sig"
OMS_EXTRA_HINT = "install the 'oms' extra: pip install 'pytest-inferedgeforge[oms]'"
_LATER = (RUNS_DIR, RUN_SUMMARY_FILE, ACCURACY_EVIDENCE_FILE, RESULTS_DIR, REPRODUCIBILITY_FILE, SIGNATURE_FILE, OMS_FILE)
"""What is written after a build is signed (runs, a later DSSE signature) and the OMS signature itself."""


def oms_hashing(build_dir: Path) -> object:
    """model_signing's hashing settings for a build directory: everything but :data:`_LATER`."""
    from model_signing import hashing

    root = build_dir.resolve()
    return hashing.Config().set_ignored_paths(paths=[root / name for name in _LATER])


def oms_issues(build_dir: Path, keys: list[Key]) -> list[Issue]:
    """``model.sig``, when present and keys are given, must verify with one of the ECDSA P-256 keys."""
    if not (build_dir / OMS_FILE).is_file() or not keys:
        return []
    try:
        from model_signing import verifying
    except ImportError:
        return [Issue("WARNING", OMS_FILE, f"OMS signature present but not checked: model_signing is not installed "
                                           f"({OMS_EXTRA_HINT})")]
    candidates = [key for key in keys if key.keytype == "ecdsa"]
    if not candidates:
        return [Issue("ERROR", OMS_FILE, "OMS signature present but no ECDSA P-256 key was given to check it")]
    root = build_dir.resolve()
    failures = []
    with tempfile.TemporaryDirectory(prefix="forge-oms-") as scratch:
        for index, key in enumerate(candidates):
            pem = Path(scratch) / f"{index}.pub"
            pem.write_text(str(key.keyval["public"]), encoding="utf-8")
            try:
                (verifying.Config().set_hashing_config(oms_hashing(root))  # type: ignore[arg-type]
                 .set_ignore_unsigned_files(True).use_elliptic_key_verifier(public_key=pem).verify(root, root / OMS_FILE))
            except Exception as exc:  # model_signing raises ValueError and library-specific errors alike
                failures.append(first_line(exc, 200))
                continue
            return []
    return [Issue("ERROR", OMS_FILE, f"the OMS signature does not verify with a given key: {failures[0]}")]
