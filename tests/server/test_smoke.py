"""Smoke test: a real server process answers redis-py over TCP."""


def test_set_get_roundtrip(r):
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == b"hello"
    assert r.incr("counter") == 1
