"""Issue 12, class 4: a hostile or careless embeddings endpoint never gets the key elsewhere, nor fills memory.

Fake servers on loopback play the endpoint: one redirects to another (another port is another origin), one sends
a body far over the limit, one nests JSON past Python's recursion limit. Every failure is an ``EvalkitError``
(exit 2 through the CLI) with one line naming the endpoint.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evalkit.encoders.remote_api import (
    INSECURE_HTTP_ENV,
    EmbeddingAPIError,
    RemoteEmbeddingEncoder,
    RetryPolicy,
    check_endpoint,
    retry_after_seconds,
)
from evalkit.errors import EvalkitError

Answer = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    """What one fake server received: (method, path, headers) per request."""

    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def _serve(answer: Answer) -> Iterator[Seen]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            seen.requests.append((self.command, self.path, dict(self.headers)))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            answer(self)

        do_GET = do_POST = do_PUT = _any

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    seen.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def _embeddings(handler: BaseHTTPRequestHandler) -> None:
    _send(handler, 200, json.dumps({"data": [{"index": 0, "embedding": [1.0, 2.0]}]}).encode())


@pytest.fixture
def other_host() -> Iterator[Seen]:
    """Where a redirect points: it answers well, so following the redirect would succeed silently."""
    yield from _serve(_embeddings)


def _encoder(url: str, **options: object) -> RemoteEmbeddingEncoder:
    return RemoteEmbeddingEncoder(
        name="fake/embedder",
        base_url=url,
        model="embedder-1",
        api_key_env="EVALKIT_TEST_API_KEY",
        retry=RetryPolicy(max_retries=2, initial_backoff_s=0.01, max_backoff_s=0.02),
        sleep=lambda seconds: None,
        timeout_s=5.0,
        **options,  # type: ignore[arg-type]
    )


def _embed(encoder: RemoteEmbeddingEncoder) -> None:
    encoder.embed_texts(["hello"])


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_TEST_API_KEY", "sk-secret")
    monkeypatch.delenv(INSECURE_HTTP_ENV, raising=False)


def _assert_one_line(err: EvalkitError) -> str:
    text = str(err)
    assert err.exit_code == 2 and "\n" not in text and text.isprintable(), text
    return text


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_the_key_never_reaches_the_other_host(other_host: Seen, status: int) -> None:
    target = f"{other_host.url}/embeddings"
    for redirecting in _serve(lambda h: _send(h, status, b"", Location=target)):
        with pytest.raises(EmbeddingAPIError) as caught:
            _embed(_encoder(redirecting.url))
        text = _assert_one_line(caught.value)
        assert text.startswith(f"{redirecting.url}/embeddings: HTTP {status}") and target in text
        assert [(m, p) for m, p, _ in redirecting.requests] == [("POST", "/v1/embeddings")]  # sent once, not retried
        assert redirecting.requests[0][2]["Authorization"] == "Bearer sk-secret"  # the configured host only
    assert other_host.requests == []  # no Authorization, no GET, nothing at all went to the other origin


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3:8080/v1", "http://api.example.com/v1", "http://[2001:db8::1]/v1", "HTTP://api.example.com"],
)
def test_plain_http_to_a_remote_host_is_refused_before_any_connection(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(EvalkitError) as caught:
        _encoder(url)
    assert caught.value.field == "api_base_url" and INSECURE_HTTP_ENV in _assert_one_line(caught.value)
    assert check_endpoint(url, allow_insecure_http=True) == url.rstrip("/")
    monkeypatch.setenv(INSECURE_HTTP_ENV, "1")  # the user's explicit opt-in
    assert _encoder(url).base_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/v1", "http://127.8.0.1/v1", "http://localhost:8/v1", "http://[::1]/v1"]
)
def test_plain_http_to_loopback_and_https_anywhere_need_no_opt_in(url: str) -> None:
    assert _encoder(url).url == f"{url}/embeddings"
    assert _encoder("https://api.example.com/v1/").url == "https://api.example.com/v1/embeddings"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/v1", "api.example.com/v1", "https:///v1", "http://h:99999/v1"]
)
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(EvalkitError) as caught:
        _encoder(url)
    assert caught.value.field == "api_base_url"
    _assert_one_line(caught.value)


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(EvalkitError) as caught:
        _encoder("https://user:hunter2@api.example.com/v1")
    assert "hunter2" not in _assert_one_line(caught.value)


def _huge_streamed(handler: BaseHTTPRequestHandler) -> None:
    """A body with no Content-Length that never ends before the client stops reading (1 MiB chunks, up to 64)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")
    handler.end_headers()
    chunk = b"[" * 2**20
    try:
        for _ in range(64):
            handler.wfile.write(chunk)
    except OSError:  # the client hung up, as it should
        pass


@pytest.mark.parametrize(
    "answer",
    [
        _huge_streamed,
        lambda h: _send(h, 200, b"{}", **{"Content-Length": str(50 * 2**30)}),  # declares 50 GiB: not read at all
    ],
    ids=["streamed", "declared"],
)
def test_a_huge_body_is_refused_after_a_bounded_read(answer: Answer) -> None:
    for server in _serve(answer):
        with pytest.raises(EmbeddingAPIError) as caught:
            _embed(_encoder(server.url, max_response_bytes=100_000))
        text = _assert_one_line(caught.value)
        assert caught.value.field == "(body)" and "100,000 bytes" in text
        assert len(server.requests) == 1  # not retried


def test_the_default_limit_is_bounded() -> None:
    encoder = _encoder("https://api.example.com/v1")
    assert 16 * 2**20 <= encoder.max_response_bytes <= 2**30


def test_json_nested_past_the_recursion_limit_is_bad_input_not_a_crash() -> None:
    body = b"[" * 200_000 + b"]" * 200_000
    for server in _serve(lambda h: _send(h, 200, body)):
        with pytest.raises(EmbeddingAPIError) as caught:
            _embed(_encoder(server.url))
        assert "not JSON" in _assert_one_line(caught.value)


def test_an_integer_too_large_for_a_float_is_a_field_error() -> None:
    body = b'{"data": [{"index": 0, "embedding": [1' + b"0" * 400 + b"]}]}"
    for server in _serve(lambda h: _send(h, 200, body)):
        with pytest.raises(EmbeddingAPIError) as caught:
            _embed(_encoder(server.url))
        assert caught.value.field == "data[0].embedding"


@pytest.mark.parametrize(
    ("message", "shown"),
    [("\x1b[31mno\x07 access", "HTTP 400: \\x1b[31mno\\x07 access"), ("x" * 500_000, "x" * 200)],
)
def test_an_error_body_is_shown_as_one_short_printable_line(message: str, shown: str) -> None:
    body = json.dumps({"error": {"message": message}}, ensure_ascii=False).encode()
    for server in _serve(lambda h: _send(h, 400, body)):
        with pytest.raises(EmbeddingAPIError) as caught:
            _embed(_encoder(server.url))
        text = _assert_one_line(caught.value)
        assert shown in text and len(text) < 600


def test_retry_after_cannot_stall_the_run() -> None:
    assert retry_after_seconds("inf") is None and retry_after_seconds("nan") is None
    sleeps: list[float] = []
    for server in _serve(lambda h: _send(h, 429, b"{}", **{"Retry-After": "99999999"})):
        encoder = _encoder(server.url)
        encoder._sleep = sleeps.append
        with pytest.raises(EmbeddingAPIError, match="no answer after 3 attempts"):
            _embed(encoder)
    assert sleeps == [0.02, 0.02]  # capped at max_backoff_s
