"""``keygen`` never writes through a symbolic link nor leaves a private key readable for a moment, and keys of a
type the docs do not promise (RSA, other curves) are refused wherever a key is loaded."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.keys import generate_key, load_public_key, load_signer

SUPPORTED = "Ed25519 or ECDSA P-256"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file someone else cares about, which a planted link points at."""
    path = tmp_path / "victim"
    path.write_text("precious\n")
    return path


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int, int]]]:
    """Every file os.open creates, as (path, flags, its mode the moment it exists), under umask 0 (so the mode is
    exactly what the open asked for); any chmod fails the test."""
    created: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        descriptor = real_open(path, flags, mode, **kwargs)
        if flags & os.O_CREAT:
            created.append((str(path), flags, stat.S_IMODE(os.fstat(descriptor).st_mode)))
        return descriptor

    def no_chmod(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"chmod called: {args}")

    monkeypatch.setattr(os, "open", spy)
    monkeypatch.setattr(os, "chmod", no_chmod)
    previous = os.umask(0)
    try:
        yield created
    finally:
        os.umask(previous)


def test_force_on_a_symlink_to_a_file_fails_and_leaves_the_target_untouched(tmp_path: Path, victim: Path,
                                                                            cli: Any) -> None:
    (tmp_path / "k").symlink_to(victim)
    code, _, err = cli("keygen", str(tmp_path / "k"), "--force")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {tmp_path / 'k'} is a symbolic link")
    assert victim.read_text() == "precious\n" and (tmp_path / "k").is_symlink()
    assert not (tmp_path / "k.pub").exists()


def test_a_dangling_symlink_fails_and_creates_nothing_at_its_target(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "k").symlink_to(tmp_path / "nowhere")
    code, _, err = cli("keygen", str(tmp_path / "k"))
    assert code == 1 and err.count("\n") == 1 and "is a symbolic link" in err
    assert not os.path.lexists(tmp_path / "nowhere")


def test_a_symlink_at_the_public_key_path_fails_before_any_key_is_written(tmp_path: Path, victim: Path,
                                                                          cli: Any) -> None:
    (tmp_path / "k.pub").symlink_to(victim)
    code, _, err = cli("keygen", str(tmp_path / "k"), "--force")
    assert code == 1 and err.startswith(f"Error: {tmp_path / 'k.pub'} is a symbolic link")
    assert victim.read_text() == "precious\n" and not (tmp_path / "k").exists()


def test_a_new_private_key_is_0600_from_its_creation(tmp_path: Path, opens: list[tuple[str, int, int]]) -> None:
    generate_key(tmp_path / "k")
    (private, flags, mode), (public, _, public_mode) = opens
    assert private == str(tmp_path / "k") and mode == 0o600
    assert flags & os.O_EXCL and flags & os.O_NOFOLLOW
    assert public == str(tmp_path / "k.pub") and public_mode == 0o644
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_force_writes_the_new_key_into_a_new_0600_file_never_into_the_old_one(
        tmp_path: Path, opens: list[tuple[str, int, int]]) -> None:
    """The old 0644 file was truncated and written before a chmod; now a 0600 temp file replaces it."""
    old = tmp_path / "k"
    descriptor = os.open(old, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(descriptor, b"old key\n")
    os.close(descriptor)
    opens.clear()
    with old.open() as before:  # the old file itself, whatever name it has afterwards
        generate_key(old, overwrite=True)
        assert before.read() == "old key\n"
    assert opens
    assert all(mode == 0o600 and flags & os.O_EXCL for path, flags, mode in opens if not path.endswith(".pub"))
    assert stat.S_IMODE(old.stat().st_mode) == 0o600 and "PRIVATE KEY" in old.read_text()


def test_force_refuses_to_replace_something_that_is_not_a_file(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "k").mkdir()
    code, _, err = cli("keygen", str(tmp_path / "k"), "--force")
    assert code == 1 and err.count("\n") == 1 and "is not a regular file" in err
    assert (tmp_path / "k").is_dir()


def _foreign(kind: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "RSA (2048-bit)" \
        else ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(params=["RSA (2048-bit)", "ECDSA secp384r1"])
def foreign_key(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A private key of a type Forge does not support, and its public key beside it; with the type's name."""
    key = _foreign(request.param)
    path = tmp_path / "foreign"
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    (tmp_path / "foreign.pub").write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return path, request.param


def test_a_foreign_private_key_is_refused_for_signing(tmp_path: Path, foreign_key: tuple[Path, str], cli: Any) -> None:
    path, kind = foreign_key
    code, _, err = cli("sign", str(tmp_path), "--key", str(path))
    assert code == 1 and err.count("\n") == 1
    assert err == f"Error: {path}: the private key is {kind}; Forge signs and verifies with {SUPPORTED} keys only " \
                  "(inferedgeforge keygen writes one)\n"


def test_a_foreign_public_key_is_refused_for_verifying(tmp_path: Path, foreign_key: tuple[Path, str], cli: Any) -> None:
    path, kind = foreign_key
    code, _, err = cli("verify", str(tmp_path), "--key", f"{path}.pub")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {path}.pub: the public key is {kind}; ") and SUPPORTED in err


def test_the_loaders_refuse_a_foreign_key_with_the_supported_list(foreign_key: tuple[Path, str]) -> None:
    path, kind = foreign_key
    for load, target in ((load_signer, path), (load_public_key, Path(f"{path}.pub"))):
        with pytest.raises(ForgeError, match=f"is {re.escape(kind)}; .*{SUPPORTED}"):
            load(target)
