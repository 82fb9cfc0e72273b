"""Signing keys as files: a PEM private key (PKCS#8, mode 0600) and its public key beside it as ``<path>.pub``.

Keys are securesystemslib keys (Ed25519 or ECDSA P-256), so an envelope Forge
signs verifies with any DSSE implementation given the public key. A key file
that is missing, encrypted, of another type or not PEM is one clear error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pytest_inferedgeforge.model.errors import ForgeError

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner, Key, SSlibKey

KeyAlgorithm = Literal["ed25519", "ecdsa-p256"]
KEY_ALGORITHMS: tuple[KeyAlgorithm, ...] = ("ed25519", "ecdsa-p256")
PUBLIC_SUFFIX = ".pub"


def public_key_path(private_key: Path) -> Path:
    return private_key.with_name(private_key.name + PUBLIC_SUFFIX)


def generate_key(path: Path, algorithm: KeyAlgorithm = "ed25519", *, overwrite: bool = False) -> SSlibKey:
    """Write a new private key to ``path`` (created 0600, never world-readable for a moment) and ``path.pub``."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
    from securesystemslib.signer import CryptoSigner

    public = public_key_path(path)
    for target in (path, public):
        if target.exists() and not overwrite:
            raise ForgeError(f"{target} already exists; refusing to overwrite a key (remove it first)")
    if not path.parent.is_dir():
        raise ForgeError(f"directory not found: {path.parent}")
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey = (
        ed25519.Ed25519PrivateKey.generate() if algorithm == "ed25519" else ec.generate_private_key(ec.SECP256R1()))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    os.chmod(path, 0o600)
    public.write_bytes(private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return CryptoSigner(private).public_key


def load_signer(path: Path) -> CryptoSigner:
    """The signer of a private key file written by :func:`generate_key` (or any unencrypted PKCS#8 PEM key)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    data = _read_key(path, "private key")
    try:
        private = load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise ForgeError(f"{path}: the private key is encrypted; Forge reads unencrypted PEM keys "
                         "(keep the file mode 0600 or use a secret store that writes one)") from exc
    except ValueError as exc:
        raise ForgeError(f"{path}: not a PEM private key ({exc})") from exc
    try:
        return CryptoSigner(private)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise ForgeError(f"{path}: unsupported key type {type(private).__name__}; use Ed25519 or ECDSA P-256") from exc


def load_public_key(path: Path) -> SSlibKey:
    """A public key file (PEM SubjectPublicKeyInfo), as a securesystemslib key with its key id."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    data = _read_key(path, "public key")
    try:
        public = load_pem_public_key(data)
    except ValueError as exc:
        hint = "; a private key was given where a public key (.pub) is expected" if b"PRIVATE KEY" in data else ""
        raise ForgeError(f"{path}: not a PEM public key{hint}") from exc
    try:
        return SSlibKey.from_crypto(public)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise ForgeError(f"{path}: unsupported key type {type(public).__name__}; use Ed25519 or ECDSA P-256") from exc


def load_public_keys(paths: list[Path]) -> list[Key]:
    return [load_public_key(path) for path in paths]


def _read_key(path: Path, label: str) -> bytes:
    if not path.is_file():
        raise ForgeError(f"{label} file not found: {path}")
    if path.stat().st_size > 64 * 1024:
        raise ForgeError(f"{path}: too large to be a {label}")
    return path.read_bytes()
