"""Signing keys as files: a PEM private key (PKCS#8, mode 0600) and its public key beside it as ``<path>.pub``.

Keys are securesystemslib keys (Ed25519 or ECDSA P-256), so an envelope Forge
signs verifies with any DSSE implementation given the public key. A key file
that is missing, encrypted, of another type or not PEM is one clear error.

Key files are written without ever following a symbolic link (a link planted
at the key's path would aim the private key at whatever file it names) and the
private key is 0600 from the moment it exists, never chmod-ed after writing.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pytest_inferedgeforge.model.errors import ForgeError

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner, Key, SSlibKey

KeyAlgorithm = Literal["ed25519", "ecdsa-p256"]
KEY_ALGORITHMS: tuple[KeyAlgorithm, ...] = ("ed25519", "ecdsa-p256")
SUPPORTED_KEYS = "Ed25519 or ECDSA P-256"
PUBLIC_SUFFIX = ".pub"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
"""A new file only: O_EXCL fails on anything already at the path, a link (dangling or not) included."""


def public_key_path(private_key: Path) -> Path:
    return private_key.with_name(private_key.name + PUBLIC_SUFFIX)


def generate_key(path: Path, algorithm: KeyAlgorithm = "ed25519", *, overwrite: bool = False) -> SSlibKey:
    """Write a new private key to ``path`` (0600) and its public key to ``path.pub`` (0644). ``overwrite``
    replaces existing key files, never a symbolic link: a link at either path is refused before anything is
    written."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
    from securesystemslib.signer import CryptoSigner

    public = public_key_path(path)
    for target in (path, public):
        _check_target(target, overwrite)
    if not path.parent.is_dir():
        raise ForgeError(f"directory not found: {path.parent}")
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey = (
        ed25519.Ed25519PrivateKey.generate() if algorithm == "ed25519" else ec.generate_private_key(ec.SECP256R1()))
    _write_key(path, private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), 0o600)
    _write_key(public, private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo), 0o644)
    return CryptoSigner(private).public_key


def _check_target(target: Path, overwrite: bool) -> None:
    if target.is_symlink():
        raise ForgeError(f"{target} is a symbolic link; refusing to write a key through it, with or without "
                         "--force (remove the link or choose another path)")
    if not target.exists():
        return
    if not overwrite:
        raise ForgeError(f"{target} already exists; refusing to overwrite a key (remove it first, or pass --force)")
    if not target.is_file():
        raise ForgeError(f"{target} is not a regular file; --force replaces only a key file (choose another path)")


def _write_key(target: Path, data: bytes, mode: int) -> None:
    """``data`` in a new file created with ``mode``; an existing key file is replaced by renaming a new one over
    it, which replaces the name itself (so the old file's mode never applies, and a link swapped in meanwhile is
    replaced, not followed)."""
    if not os.path.lexists(target):
        _create(target, data, mode)
        return
    temp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        _create(temp, data, mode)
        os.replace(temp, target)
    except OSError as exc:
        raise ForgeError(f"{target}: cannot replace the key file ({exc.strerror})") from exc
    finally:
        temp.unlink(missing_ok=True)


def _create(target: Path, data: bytes, mode: int) -> None:
    try:
        descriptor = os.open(target, _CREATE, mode)
    except OSError as exc:
        raise ForgeError(f"{target}: cannot create the key file ({exc.strerror}); nothing was written there") from exc
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _check_type(key: object, path: Path, label: str) -> None:
    """Refuse every key type but Ed25519 and ECDSA P-256 before securesystemslib sees it: it would sign and verify
    with RSA or another curve too, which the provenance docs do not promise and OpenSSF model signing does not
    take."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return
        found = f"ECDSA {key.curve.name}"
    elif isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        found = f"RSA ({key.key_size}-bit)"
    else:
        found = type(key).__name__.lstrip("_").removesuffix("PrivateKey").removesuffix("PublicKey")
    raise ForgeError(f"{path}: the {label} is {found}; Forge signs and verifies with {SUPPORTED_KEYS} keys only "
                     "(inferedgeforge keygen writes one)")


def load_signer(path: Path) -> CryptoSigner:
    """The signer of a private key file written by :func:`generate_key` (or any unencrypted PKCS#8 PEM key of a
    supported type)."""
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
    _check_type(private, path, "private key")
    return CryptoSigner(private)


def load_public_key(path: Path) -> SSlibKey:
    """A public key file (PEM SubjectPublicKeyInfo) of a supported type, as a securesystemslib key with its key id."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    data = _read_key(path, "public key")
    try:
        public = load_pem_public_key(data)
    except ValueError as exc:
        hint = "; a private key was given where a public key (.pub) is expected" if b"PRIVATE KEY" in data else ""
        raise ForgeError(f"{path}: not a PEM public key{hint}") from exc
    _check_type(public, path, "public key")
    return SSlibKey.from_crypto(public)


def load_public_keys(paths: list[Path]) -> list[Key]:
    return [load_public_key(path) for path in paths]


def _read_key(path: Path, label: str) -> bytes:
    if not path.is_file():
        raise ForgeError(f"{label} file not found: {path}")
    if path.stat().st_size > 64 * 1024:
        raise ForgeError(f"{path}: too large to be a {label}")
    return path.read_bytes()
