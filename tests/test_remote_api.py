"""The OpenAI-compatible embeddings adapter against a fake server on loopback: batching, retries, bad answers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from evalkit.core import EmbeddingCore
from evalkit.encoders import load_encoder
from evalkit.encoders.protocol import TextEncoder, capabilities_of
from evalkit.encoders.remote_api import (
    EmbeddingAPIError,
    RemoteEmbeddingEncoder,
    RetryPolicy,
    parse_embeddings,
    retry_after_seconds,
)
from evalkit.registry.models import resolve_model

Reply = tuple[int, dict[str, str], Any]  # status, headers, JSON body


def vector_of(text: str) -> list[float]:
    """The fake model: a text's vector is its length and its first and last characters."""
    return [float(len(text)), float(ord(text[0])), float(ord(text[-1]))]


def embeddings_reply(body: dict[str, Any]) -> Reply:
    """A well-formed answer, its items listed in reverse order (clients must sort by ``index``)."""
    items = [{"object": "embedding", "index": i, "embedding": vector_of(t)} for i, t in enumerate(body["input"])]
    return 200, {}, {"object": "list", "data": items[::-1], "model": body["model"], "usage": {"total_tokens": 1}}


@dataclass
class FakeServer:
    """Records every request; answers with the next scripted reply, then with well-formed embeddings."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    script: list[Callable[[dict[str, Any]], Reply]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            state.headers.append(dict(self.headers))
            reply = state.script.pop(0) if state.script else embeddings_reply
            status, headers, payload = reply(body) if self.path == "/v1/embeddings" else (404, {}, {})
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def make_encoder(url: str, sleeps: list[float] | None = None, **options: Any) -> RemoteEmbeddingEncoder:
    return RemoteEmbeddingEncoder(
        name="fake/embedder",
        base_url=url,
        model="embedder-1",
        retry=options.pop("retry", RetryPolicy(max_retries=3, initial_backoff_s=0.5, max_backoff_s=4.0)),
        sleep=(sleeps.append if sleeps is not None else lambda seconds: None),
        timeout_s=5.0,
        **options,
    )


def encode(encoder: RemoteEmbeddingEncoder, texts: list[str], **core_options: Any) -> np.ndarray:
    return EmbeddingCore(show_progress=False, **core_options).encode(encoder, texts, "document")


def test_vectors_come_back_in_input_order_through_the_core(server: FakeServer) -> None:
    encoder = make_encoder(server.url)
    assert isinstance(encoder, TextEncoder) and capabilities_of(encoder).level == "texts"
    texts = ["short", "a much longer text about bones", "mid length", "short"]
    vectors = encode(encoder, texts)
    np.testing.assert_array_equal(vectors, np.array([vector_of(t) for t in texts], dtype=np.float32))
    assert sum(len(body["input"]) for body in server.requests) == 3  # the duplicate is sent once
    assert server.requests[0]["model"] == "embedder-1" and server.requests[0]["encoding_format"] == "float"
    assert "dimensions" not in server.requests[0]


def test_requests_are_cut_by_count(server: FakeServer) -> None:
    encoder = make_encoder(server.url, max_texts_per_request=3)
    texts = [f"text number {i}" for i in range(7)]
    vectors = encode(encoder, texts)
    assert [len(body["input"]) for body in server.requests] == [3, 3, 1]
    np.testing.assert_array_equal(vectors, np.array([vector_of(t) for t in texts], dtype=np.float32))


def test_requests_are_cut_by_characters_and_a_long_text_goes_alone(server: FakeServer) -> None:
    encoder = make_encoder(server.url, max_chars_per_request=10)
    texts = ["aaaa", "bbbb", "cc", "d" * 25, "ee"]
    vectors = encoder.embed_texts(texts)
    assert [body["input"] for body in server.requests] == [["aaaa", "bbbb", "cc"], ["d" * 25], ["ee"]]
    np.testing.assert_array_equal(vectors, np.array([vector_of(t) for t in texts], dtype=np.float32))


def test_the_core_batches_texts_by_count_with_no_pseudo_tokens(server: FakeServer) -> None:
    """Ported: the adapter once faked tokens so the core's token budget sized its batches; a text-level model is now
    batched by a count of texts (``batch_size``), and the requests within a batch by the adapter's own limits."""
    encoder = make_encoder(server.url)
    assert not hasattr(encoder, "tokenize")
    texts = [f"{i:03d}" + "y" * 37 for i in range(8)]
    encode(encoder, texts, batch_size=2)
    assert [len(body["input"]) for body in server.requests] == [2, 2, 2, 2]
    encode(make_encoder(server.url), [t + "!" for t in texts])  # default: up to max_batch_size texts per batch
    assert [len(body["input"]) for body in server.requests[4:]] == [8]


def test_a_429_is_retried_after_the_retry_after_header(server: FakeServer) -> None:
    server.script.append(lambda body: (429, {"Retry-After": "2"}, {"error": {"message": "slow down"}}))
    sleeps: list[float] = []
    vectors = encode(make_encoder(server.url, sleeps), ["hello", "world"])
    assert len(server.requests) == 2 and sleeps == [2.0]
    np.testing.assert_array_equal(vectors[0], vector_of("hello"))


def test_5xx_is_retried_with_exponential_backoff_then_given_up(server: FakeServer) -> None:
    server.script.append(lambda body: (500, {}, {"error": {"message": "boom"}}))
    sleeps: list[float] = []
    encode(make_encoder(server.url, sleeps), ["hello"])
    assert len(server.requests) == 2 and sleeps == [0.5]

    server.requests.clear()
    server.script.extend([lambda body: (503, {}, {})] * 4)
    sleeps.clear()
    with pytest.raises(EmbeddingAPIError, match=r"no answer after 4 attempts \(HTTP 503"):
        encode(make_encoder(server.url, sleeps), ["again"])
    assert len(server.requests) == 4 and sleeps == [0.5, 1.0, 2.0]


def test_a_client_error_is_not_retried_and_shows_the_servers_message(server: FakeServer) -> None:
    server.script.append(lambda body: (400, {}, {"error": {"message": "input is too long"}}))
    with pytest.raises(EmbeddingAPIError, match="HTTP 400: input is too long") as err:
        encode(make_encoder(server.url), ["hello"])
    assert len(server.requests) == 1 and err.value.file == f"{server.url}/embeddings"


def test_connection_errors_are_retried() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    encoder = make_encoder(f"http://127.0.0.1:{port}/v1", sleeps)
    with pytest.raises(EmbeddingAPIError, match="no answer after 4 attempts"):
        encoder.embed_texts(["hello"])
    assert sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"object": "list"}, "data"),
        ({"data": [{"index": 0, "embedding": [1.0]}]}, "data"),  # one embedding for two inputs
        ({"data": [{"index": 0}, {"index": 1, "embedding": [1.0]}]}, "data[0].embedding"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}, "data[1].index"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 7, "embedding": [2.0]}]}, "data[1].index"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": ["x"]}]}, "data[1].embedding"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}, "data[1].embedding"),
        ([1, 2], "(body)"),
    ],
)
def test_a_malformed_response_names_the_field(server: FakeServer, payload: Any, field: str) -> None:
    server.script.append(lambda body: (200, {}, payload))
    encoder = make_encoder(server.url)
    with pytest.raises(EmbeddingAPIError) as err:
        encoder.embed_texts(["one", "two"])
    assert err.value.field == field
    assert f"field '{field}'" in str(err.value) and "\n" not in str(err.value)


def test_a_body_that_is_not_json(server: FakeServer) -> None:
    server.script.append(lambda body: (200, {}, b"<html>gateway</html>"))
    encoder = make_encoder(server.url)
    with pytest.raises(EmbeddingAPIError, match="not JSON"):
        encoder.embed_texts(["one"])


def test_the_api_key_comes_from_the_environment(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = make_encoder(server.url, api_key_env="EVALKIT_TEST_API_KEY")
    monkeypatch.delenv("EVALKIT_TEST_API_KEY", raising=False)
    with pytest.raises(EmbeddingAPIError) as err:
        encoder.embed_texts(["one"])
    assert err.value.field == "api_key_env" and not server.requests
    monkeypatch.setenv("EVALKIT_TEST_API_KEY", "sk-test")
    encoder.embed_texts(["one"])
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_the_rate_limit_spaces_requests_out(server: FakeServer) -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    encoder = make_encoder(server.url, requests_per_minute=30, max_texts_per_request=1)
    encoder._sleep, encoder._clock = sleep, lambda: now[0]
    encoder.embed_texts(["one", "two", "three"])
    assert len(server.requests) == 3 and sleeps == [2.0, 2.0]


def test_blank_texts_get_zero_vectors_without_being_sent(server: FakeServer) -> None:
    encoder = make_encoder(server.url, embedding_dim=3)
    vectors = encoder.embed_texts(["  ", "word"])
    assert server.requests[0]["input"] == ["word"]
    np.testing.assert_array_equal(vectors, np.array([[0, 0, 0], vector_of("word")], dtype=np.float32))
    only_blank = make_encoder(server.url)
    with pytest.raises(EmbeddingAPIError) as err:
        only_blank.embed_texts([""])
    assert err.value.field == "embedding_dim"


def test_dimensions_are_sent_checked_and_part_of_the_fingerprint(server: FakeServer) -> None:
    encoder = make_encoder(server.url, dimensions=3)
    encoder.embed_texts(["one"])
    assert server.requests[0]["dimensions"] == 3
    shorter = make_encoder(server.url, dimensions=2)  # the fake server ignores the request and sends 3
    with pytest.raises(EmbeddingAPIError, match="2 were asked for"):
        shorter.embed_texts(["one"])
    fingerprints = [
        make_encoder(server.url).fingerprint(),
        make_encoder(server.url, dimensions=3).fingerprint(),
        make_encoder(server.url.replace("127.0.0.1", "localhost")).fingerprint(),
    ]
    assert len({json.dumps(f, sort_keys=True) for f in fingerprints}) == 3
    assert fingerprints[0]["api_base_url"] == server.url and fingerprints[0]["api_model"] == "embedder-1"


def test_cached_vectors_are_not_requested_again(server: FakeServer, tmp_path) -> None:
    from evalkit.cache import EmbeddingCache

    texts = ["alpha", "beta", "gamma"]
    first = encode(make_encoder(server.url), texts, cache=EmbeddingCache(tmp_path))
    sent = len(server.requests)
    again = encode(make_encoder(server.url), texts, cache=EmbeddingCache(tmp_path))
    assert len(server.requests) == sent
    np.testing.assert_array_equal(first, again)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == 10.0


def test_parse_orders_by_index() -> None:
    payload = {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]}
    assert parse_embeddings(payload, 2, dimensions=None, source="x").tolist() == [[1.0], [2.0]]


def test_a_registry_api_model_loads_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = resolve_model("openai/text-embedding-3-small")
    assert spec.local_path is None and spec.api_base_url == "https://api.openai.com/v1"
    encoder = load_encoder(spec)
    assert isinstance(encoder, RemoteEmbeddingEncoder)
    assert (encoder.url, encoder.model, encoder.api_key_env) == (
        "https://api.openai.com/v1/embeddings",
        "text-embedding-3-small",
        "OPENAI_API_KEY",
    )
