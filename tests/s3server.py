"""A real S3-protocol server on loopback for the storage tests: moto in server mode, run as a
subprocess (``python -m moto.server``) once per test session, with a fresh bucket per test."""
from __future__ import annotations

import secrets
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from tests.ports import free_port, listens_on

ACCESS_KEY, SECRET_KEY, REGION = "podium-test-key", "podium-test-secret", "us-east-1"


@dataclass
class S3Server:
    endpoint_url: str

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def new_bucket(self) -> str:
        name = "podium-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str, prefix: str = "files") -> dict:
        """Config overrides pointing the server's storage at ``bucket``."""
        return {"storage_url": f"s3://{bucket}/{prefix}", "s3_endpoint_url": self.endpoint_url,
                "s3_region": REGION, "s3_access_key_id": ACCESS_KEY,
                "s3_secret_access_key": SECRET_KEY, "s3_addressing_style": "path"}


def _start_moto(log) -> tuple[subprocess.Popen, int]:
    """moto on a free port, retried if another process takes the port first."""
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            if listens_on(proc.pid, port):
                return proc, port
            time.sleep(0.1)
        proc.kill()
        proc.wait(10)
    raise RuntimeError(f"moto S3 server did not start (see {log.name})")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc, port = _start_moto(log)
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(params=["disk", "s3"])
def storage_settings(request) -> dict:
    """Parametrises a test over both storage backends: ``{}`` (disk under the test's data dir)
    or a fresh bucket on the session's moto server."""
    if request.param == "disk":
        return {}
    s3 = request.getfixturevalue("s3_server")
    return s3.settings(s3.new_bucket())
