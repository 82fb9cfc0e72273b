"""Checking ``provenance.dsse.json``: a DSSE envelope whose payload is ``provenance.json``'s exact bytes,
signed by a key the caller trusts.

Offline and standard: the envelope is DSSE (securesystemslib), so any DSSE
verifier given the public key reaches the same verdict. The payload must be the
file itself, byte for byte; a signature over other bytes vouches for nothing here.
"""

from __future__ import annotations

import base64
import binascii
import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.model.errors import RecordError
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.layout import PROVENANCE_FILE, SIGNATURE_FILE
from pytest_inferedgeforge.model.provenance import PAYLOAD_TYPE
from pytest_inferedgeforge.verify.manifest import Issue

if TYPE_CHECKING:
    from securesystemslib.signer import Key


def envelope_payload(envelope: dict[str, Any]) -> bytes:
    """The envelope's payload bytes; :class:`RecordError` when it is not a DSSE envelope of a Statement."""
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise RecordError(f"payloadType must be {PAYLOAD_TYPE}")
    try:
        return base64.b64decode(str(envelope.get("payload", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError("the payload is not base64") from exc


def signed_by(envelope: dict[str, Any], keys: list[Key]) -> list[str]:
    """The key ids among ``keys`` whose signature on the envelope verifies (empty: none does)."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    try:
        parsed = Envelope.from_dict(copy.deepcopy(envelope))  # from_dict consumes the dicts it reads
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise RecordError(f"not a DSSE envelope ({exc})") from exc
    try:
        return sorted(parsed.verify(keys, 1))
    except VerificationError:
        return []


def signature_issues(build_dir: Path, keys: list[Key], *, require: bool) -> list[Issue]:
    """The envelope binds ``provenance.json`` and verifies with one of ``keys``.

    ``keys`` given: a signature is required and must verify. ``require`` without keys: a well-formed
    envelope over the provenance must exist (whose signer only a key can establish, which is said).
    """
    path = build_dir / SIGNATURE_FILE
    if not path.is_file():
        if keys or require:
            return [Issue("ERROR", SIGNATURE_FILE, "missing: the build is not signed, so no key stands behind it")]
        return []
    try:
        envelope = read_json_object(path, "Signature envelope")
        payload = envelope_payload(envelope)
    except RecordError as exc:
        return [Issue("ERROR", SIGNATURE_FILE, str(exc))]
    provenance = build_dir / PROVENANCE_FILE
    if not provenance.is_file() or provenance.read_bytes() != payload:
        return [Issue("ERROR", SIGNATURE_FILE, "its payload is not this build's provenance.json (the provenance "
                                               "was changed after signing, or the envelope belongs to another build)")]
    if not keys:
        return [Issue("WARNING", SIGNATURE_FILE, "signed, but no trusted public key was given (--key), so the "
                                                 "signer is not established")] if require else []
    try:
        accepted = signed_by(envelope, keys)
    except RecordError as exc:
        return [Issue("ERROR", SIGNATURE_FILE, str(exc))]
    if not accepted:
        ids = ", ".join(str(item.get("keyid", "?"))[:16] for item in envelope.get("signatures") or []
                        if isinstance(item, dict)) or "none"
        return [Issue("ERROR", SIGNATURE_FILE, f"no signature verifies with a trusted key (signed by key id(s) {ids})")]
    return []
