"""ssl=: TLS to a redis-server built with TLS (skipped when unavailable)."""
from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from servers import REDIS_SERVER, free_port, redis_server


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    if not REDIS_SERVER or not shutil.which("openssl"):
        pytest.skip("needs redis-server and openssl")
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    tls_port = free_port()
    try:
        proc = redis_server(tmp, "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
                            "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
                            "--tls-auth-clients", "no").start()
    except RuntimeError as exc:
        pytest.skip(f"redis-server without TLS support: {exc}")
    yield tls_port, str(cert)
    proc.stop()


def test_tls_round_trip(tls_redis, client_factory):
    port, cafile = tls_redis
    context = ssl.create_default_context(cafile=cafile)
    c = client_factory(f"127.0.0.1:{port}", ssl=context)
    assert c.set("secure", {"x": 1}) is True
    assert c.get("secure") == {"x": 1}
    with pytest.raises(TypeError, match="SSLContext"):
        client_factory(f"127.0.0.1:{port}", ssl=True)
