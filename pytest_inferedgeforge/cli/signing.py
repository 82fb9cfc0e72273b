"""``keygen`` and ``sign``: keys for signed provenance, and signing a build that exists (docs/provenance.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import add_build_dir, add_command, build_arg, print_json

OMS_HELP = ("also write model.sig, an OpenSSF model-signing signature over the build directory (needs an ECDSA P-256 "
            "key and the 'oms' extra)")


def cmd_keygen(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.model.keys import generate_key, public_key_path

    path = Path(args.path)
    key = generate_key(path, args.algorithm, overwrite=args.force)
    result = {"private_key": str(path), "public_key": str(public_key_path(path)), "keyid": key.keyid,
              "algorithm": args.algorithm}
    if args.json:
        print_json(result)
        return 0
    print(f"Private key: {path} (mode 0600; keep it secret, pass it to --sign-key / --forge-sign-key)")
    print(f"Public key : {public_key_path(path)} (share it; pass it to --key / --forge-trust)")
    print(f"Key id     : {key.keyid}")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.signing import load_signing_key, sign_build
    from pytest_inferedgeforge.model.layout import SIGNATURE_FILE

    build_dir = build_arg(args)
    keyid = sign_build(build_dir, load_signing_key(Path(args.key), oms=args.oms))
    if args.json:
        print_json({"build_dir": str(build_dir), "signature": str(build_dir / SIGNATURE_FILE), "keyid": keyid})
    else:
        print(f"Signed {build_dir / SIGNATURE_FILE} (key id {keyid})")
    return 0


def register(sub: Any) -> None:
    from pytest_inferedgeforge.model.keys import KEY_ALGORITHMS

    p = add_command(sub, "keygen", cmd_keygen, "write a signing key pair for signed provenance",
                    "Write a private key to PATH (PEM, PKCS#8, created mode 0600) and its public key to PATH.pub.\n"
                    "Sign builds with the private key; verify them, anywhere and offline, with the public key.\n"
                    "Key types: Ed25519 or ECDSA P-256 (other keys, RSA included, are refused wherever a key is\n"
                    "loaded). A symbolic link at PATH or PATH.pub is refused, with or without --force.")
    p.add_argument("path", metavar="PATH", help="where to write the private key (the public key goes to PATH.pub)")
    p.add_argument("--algorithm", choices=KEY_ALGORITHMS, default="ed25519", help="key type (default: ed25519)")
    p.add_argument("--force", action="store_true",
                   help="replace existing key files (atomically, with new files; never through a symbolic link)")

    p = add_command(sub, "sign", cmd_sign, "sign a build's provenance (writes provenance.dsse.json)",
                    "Sign BUILD_DIR's provenance.json into a DSSE envelope, provenance.dsse.json. The build must\n"
                    "verify first. A build that predates provenance gets one composed from its manifest; signing\n"
                    "with a second key adds a second signature.")
    add_build_dir(p)
    p.add_argument("--key", required=True, metavar="KEY", help="private key file written by 'inferedgeforge keygen'")
    p.add_argument("--oms", action="store_true", help=OMS_HELP)
