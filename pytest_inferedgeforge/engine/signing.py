"""Writing a build's provenance and signing it (docs/provenance.md).

``provenance.json`` is written with every build, before it is published; with a
key, ``provenance.dsse.json`` beside it. ``inferedgeforge sign`` signs a
published build later (under its lock, only when its whole record verifies), and
a second key adds a second signature to the same envelope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_inferedgeforge.engine.publish import build_lock
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.jsonio import read_json_object, write_json_atomic
from pytest_inferedgeforge.model.layout import MANIFEST_FILE, PROVENANCE_FILE, SIGNATURE_FILE
from pytest_inferedgeforge.model.provenance import PAYLOAD_TYPE, compose_statement, statement_to_dict
from pytest_inferedgeforge.model.records.build import Manifest, load_manifest
from pytest_inferedgeforge.verify.build_dir import verify_build_dir
from pytest_inferedgeforge.verify.oms import OMS_EXTRA_HINT, OMS_FILE, oms_hashing
from pytest_inferedgeforge.verify.provenance import byproduct_digests
from pytest_inferedgeforge.verify.signature import envelope_payload

if TYPE_CHECKING:
    from securesystemslib.signer import Signer


def write_provenance(build_dir: Path, manifest: Manifest) -> None:
    """``provenance.json`` of the build in ``build_dir``, whose records are already written."""
    statement = compose_statement(manifest, byproduct_digests(build_dir), f"urn:uuid:{uuid.uuid4()}")
    write_json_atomic(build_dir / PROVENANCE_FILE, statement_to_dict(statement))


def write_signature(build_dir: Path, signer: Signer) -> str:
    """Sign ``provenance.json``'s exact bytes into ``provenance.dsse.json`` (adding to an envelope over the same
    bytes); returns the key id."""
    from securesystemslib.dsse import Envelope

    payload = (build_dir / PROVENANCE_FILE).read_bytes()
    existing = build_dir / SIGNATURE_FILE
    envelope = Envelope(payload, PAYLOAD_TYPE, {})
    if existing.is_file():
        recorded = read_json_object(existing, "Signature envelope")
        if envelope_payload(recorded) == payload:
            envelope = Envelope.from_dict(recorded)  # consumes ``recorded``, read for this alone
    keyid = str(signer.public_key.keyid)
    if keyid in envelope.signatures:
        return keyid
    envelope.sign(signer)
    write_json_atomic(existing, envelope.to_dict())
    return keyid


def write_oms_signature(build_dir: Path, private_key: Path) -> None:
    """``model.sig``: an OpenSSF model-signing signature over the build directory (verify/oms.py says what it covers)."""
    try:
        from model_signing import signing
    except ImportError as exc:
        raise ForgeError(f"--oms needs model_signing: {OMS_EXTRA_HINT}") from exc
    root = build_dir.resolve()
    (signing.Config().set_hashing_config(oms_hashing(root))  # type: ignore[arg-type]
     .use_elliptic_key_signer(private_key=private_key).sign(root, root / OMS_FILE))


@dataclass(frozen=True)
class SigningKey:
    """The key a session signs builds with: a DSSE envelope always, an OMS signature too when ``oms``."""

    path: Path
    signer: Signer
    oms: bool = False

    def sign(self, build_dir: Path) -> str:
        keyid = write_signature(build_dir, self.signer)
        if self.oms and not (build_dir / OMS_FILE).is_file():
            write_oms_signature(build_dir, self.path)
        return keyid


def load_signing_key(path: Path, oms: bool = False) -> SigningKey:
    """The key file's signer; with ``oms`` it must be ECDSA P-256 (the key type OMS's key signer takes)."""
    from pytest_inferedgeforge.model.keys import load_signer

    signer = load_signer(path)
    if oms and signer.public_key.keytype != "ecdsa":
        raise ForgeError(f"{path}: --oms needs an ECDSA P-256 key (inferedgeforge keygen PATH --algorithm ecdsa-p256)")
    return SigningKey(path, signer, oms)


def sign_build(build_dir: Path, key: SigningKey) -> str:
    """Sign a published build; its whole record must verify first (a signature vouches for what it covers).
    A build that predates provenance gets its ``provenance.json`` composed from its manifest."""
    if not build_dir.is_dir():
        raise ForgeError(f"Build directory not found: {build_dir}")
    with build_lock(build_dir):
        report = verify_build_dir(build_dir)
        if not report.valid:
            raise ForgeError(f"refusing to sign {build_dir}: it does not verify ({report.first_error()})")
        if not (build_dir / PROVENANCE_FILE).is_file():
            write_provenance(build_dir, load_manifest(build_dir / MANIFEST_FILE))
        return key.sign(build_dir)
