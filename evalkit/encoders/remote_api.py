"""An OpenAI-compatible embeddings endpoint (``POST {base_url}/embeddings``) seen as an Encoder.

The model runs elsewhere, so the core's dedup and embedding cache matter even more here: a text is paid for once.
The adapter is a text-level model (``capabilities.level == "texts"``): the core hands it batches of distinct texts
(``--batch-size`` of them, else the core's ``max_batch_size``), with no tokens in between — the model's tokenizer
is not at hand, and the endpoint needs none.

- **Requests.** A batch from the core is sent as one or more requests of at most ``max_texts_per_request`` texts and
  ``max_chars_per_request`` characters. 429, 5xx, timeouts and dropped connections are retried with exponential
  backoff (a ``Retry-After`` header, when sent, is waited out instead); other errors fail at once. A client-side
  limit of ``requests_per_minute`` spaces the requests out. Vectors are put back in input order by each item's
  ``index``, whatever order the response lists them in.

Blank texts are not sent (the endpoint rejects them); they get a zero vector, as mteb's OpenAI wrapper gives them.
Only the standard library is used (urllib), so the adapter adds no dependency.

The endpoint is trusted with the key, nothing else is: redirects are never followed (urllib would resend the
``Authorization`` header to whatever host a 3xx names, and turn the POST into a GET), so a 3xx is an error naming
the endpoint; the key goes over plain ``http://`` only to a loopback host, unless the user opts in with
``EVALKIT_ALLOW_INSECURE_HTTP=1`` (or ``allow_insecure_http=True``); a body is read up to ``max_response_bytes``
and no further, and a ``Retry-After`` is waited out for at most ``max_backoff_s``.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.encoders.protocol import Capabilities, Role
from evalkit.errors import EvalkitError

MAX_RESPONSE_BYTES = 256 * 2**20  # 256 texts x 3,072 dimensions as JSON is ~16 MB; far more is not an answer
MAX_ERROR_BODY_BYTES = 64 * 2**10
INSECURE_HTTP_ENV = "EVALKIT_ALLOW_INSECURE_HTTP"


class EmbeddingAPIError(EvalkitError):
    """The endpoint failed, or answered something that is not an embeddings response (``field`` says where)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a failed request: waits of ``initial_backoff_s`` × 2ⁿ, at most ``max_backoff_s`` each."""

    max_retries: int = 6
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.initial_backoff_s * 2**attempt)


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """A ``Retry-After`` header as seconds to wait: delta-seconds or an HTTP date; ``None`` if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def parse_embeddings(payload: Any, n_inputs: int, *, dimensions: int | None, source: str) -> np.ndarray:
    """The ``(n_inputs, dim)`` float32 vectors of an embeddings response, row ``i`` from the item whose ``index`` is
    ``i``; anything else is an :class:`EmbeddingAPIError` naming the field."""
    if not isinstance(payload, dict):
        raise EmbeddingAPIError(f"expected a JSON object, got {type(payload).__name__}", file=source, field="(body)")
    data = payload.get("data")
    if not isinstance(data, list):
        raise EmbeddingAPIError(f"expected a list of embeddings, got {type(data).__name__}", file=source, field="data")
    if len(data) != n_inputs:
        raise EmbeddingAPIError(f"{len(data)} embeddings for {n_inputs} inputs", file=source, field="data")
    vectors: np.ndarray | None = None
    filled = np.zeros(n_inputs, dtype=bool)
    for position, item in enumerate(data):
        index, vector = _embedding_item(item, f"data[{position}]", n_inputs, filled, source)
        field = f"data[{position}].embedding"
        if vectors is None:
            if dimensions is not None and len(vector) != dimensions:
                message = f"{len(vector)} dimensions, {dimensions} were asked for"
                raise EmbeddingAPIError(message, file=source, field=field)
            vectors = np.empty((n_inputs, len(vector)), dtype=np.float32)
        elif len(vector) != vectors.shape[1]:
            message = f"{len(vector)} dimensions, the first embedding had {vectors.shape[1]}"
            raise EmbeddingAPIError(message, file=source, field=field)
        vectors[index] = vector
        filled[index] = True
    assert vectors is not None or n_inputs == 0
    return vectors if vectors is not None else np.zeros((0, dimensions or 0), dtype=np.float32)


def _embedding_item(
    item: object, where: str, n_inputs: int, filled: np.ndarray, source: str
) -> tuple[int, np.ndarray]:
    """One ``data`` item checked: its index (in range, not seen before) and its vector (finite numbers)."""
    if not isinstance(item, dict):
        raise EmbeddingAPIError(f"expected an object, got {type(item).__name__}", file=source, field=where)
    index = item.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_inputs:
        raise EmbeddingAPIError(
            f"expected an integer in [0, {n_inputs}), got {index!r}", file=source, field=f"{where}.index"
        )
    if filled[index]:
        raise EmbeddingAPIError(f"index {index} appears twice", file=source, field=f"{where}.index")
    embedding = item.get("embedding")
    try:
        vector = np.asarray(embedding, dtype=np.float32) if isinstance(embedding, list) else None
    except (TypeError, ValueError, OverflowError):
        vector = None
    if vector is None or vector.ndim != 1 or len(vector) == 0 or not np.isfinite(vector).all():
        shown = type(embedding).__name__ if not isinstance(embedding, list) else "a list with other values"
        raise EmbeddingAPIError(
            f"expected a non-empty list of finite numbers, got {shown}", file=source, field=f"{where}.embedding"
        )
    return index, vector


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(base_url: str, *, allow_insecure_http: bool | None = None) -> str:
    """``base_url`` without its trailing ``/`` if the API key may be sent there; else an error naming the field.

    Plain ``http://`` is for loopback only (a local server or tunnel): elsewhere anyone on the path reads the key.
    ``allow_insecure_http`` (default: ``$EVALKIT_ALLOW_INSECURE_HTTP`` is ``1``) lifts that for a trusted network.
    Runs before any request, so a refusal costs nothing.
    """
    try:
        parts = urllib.parse.urlsplit(base_url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - an out-of-range or non-numeric port raises here
    except ValueError as err:
        raise EvalkitError(f"not a URL: {err}", file=base_url, field="api_base_url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise EvalkitError("expected an http(s)://host/... URL", file=base_url, field="api_base_url")
    if parts.username is not None or parts.password is not None:
        raise EvalkitError("credentials in the URL; give the key through api_key_env", field="api_base_url")
    if allow_insecure_http is None:
        allow_insecure_http = os.environ.get(INSECURE_HTTP_ENV, "") == "1"
    if parts.scheme == "http" and not _is_loopback(host) and not allow_insecure_http:
        raise EvalkitError(
            f"plain http to '{host}' would send the API key and the texts unencrypted; use https, or set "
            f"{INSECURE_HTTP_ENV}=1 for a trusted network",
            file=base_url,
            field="api_base_url",
        )
    return base_url.rstrip("/")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx comes back as an ``HTTPError``: following it would hand the key to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


class RemoteEmbeddingEncoder:
    """An embedding model behind an OpenAI-compatible ``/embeddings`` endpoint.

    ``base_url`` ends before ``/embeddings`` (``https://api.openai.com/v1``); ``model`` is the id the endpoint
    knows; the API key, if any, is read from the environment variable ``api_key_env`` at the first request.
    ``dimensions`` is sent only when set (models with shortenable vectors). ``embedding_dim`` gives blank texts
    their zero vector's size before any response has shown it. ``allow_insecure_http``: see :func:`check_endpoint`.
    """

    capabilities = Capabilities(level="texts")

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        dimensions: int | None = None,
        embedding_dim: int | None = None,
        max_texts_per_request: int = 256,
        max_chars_per_request: int = 200_000,
        requests_per_minute: float | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        allow_insecure_http: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_texts_per_request < 1 or max_chars_per_request < 1:
            raise EvalkitError("requests must hold at least one text and one character", field="max_texts_per_request")
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise EvalkitError(
                f"requests_per_minute must be positive, got {requests_per_minute}", field="requests_per_minute"
            )
        self.name = name
        self.base_url = check_endpoint(base_url, allow_insecure_http=allow_insecure_http)
        self.url = f"{self.base_url}/embeddings"
        self.model = model
        self.api_key_env = api_key_env
        self.dimensions = dimensions
        self._dim = dimensions or embedding_dim
        self.max_texts_per_request = max_texts_per_request
        self.max_chars_per_request = max_chars_per_request
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._sleep = sleep
        self._clock = clock
        self._min_interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next_request_at = -math.inf

    @classmethod
    def from_spec(cls, spec: Any, encoding: Any, *, artifact_dir: Any = None) -> RemoteEmbeddingEncoder:
        """A registry API model (``adapter: openai-api``); it runs remotely, so device, precision and runtime do
        not apply to it, and no artefact is derived."""
        assert spec.api_base_url is not None  # the registry requires it for this adapter
        return cls(
            name=spec.name,
            base_url=spec.api_base_url,
            model=spec.name.split("/", 1)[-1],
            api_key_env=spec.api_key_env,
            embedding_dim=spec.embedding_dim,
        )

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + text for text in texts] if prompt else list(texts)

    def embed_texts(self, texts: list[str], role: Role = "document") -> np.ndarray:
        """Vectors of one batch of texts, in their order; blank texts get zero vectors without being sent."""
        sent = [row for row, text in enumerate(texts) if text.strip()]
        parts = [self._request([texts[row] for row in group]) for group in self._request_groups(texts, sent)]
        if parts:
            self._dim = parts[0].shape[1]
        if self._dim is None:
            raise EmbeddingAPIError(
                "only blank texts to embed and no embedding_dim to size their zero vectors", field="embedding_dim"
            )
        vectors = np.zeros((len(texts), self._dim), dtype=np.float32)
        if parts:
            vectors[sent] = np.concatenate(parts)
        return vectors

    def _request_groups(self, texts: list[str], rows: list[int]) -> list[list[int]]:
        """Consecutive rows cut into requests within the count and character limits (a longer text goes alone)."""
        groups: list[list[int]] = []
        chars = 0
        for row in rows:
            size = len(texts[row])
            if groups and len(groups[-1]) < self.max_texts_per_request and chars + size <= self.max_chars_per_request:
                groups[-1].append(row)
                chars += size
            else:
                groups.append([row])
                chars = size
        return groups

    def _request(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        payload = self._post(json.dumps(body).encode())
        return parse_embeddings(payload, len(texts), dimensions=self.dimensions, source=self.url)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env is not None:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise EmbeddingAPIError(
                    f"the API key is read from ${self.api_key_env}, which is not set", field="api_key_env"
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _throttle(self) -> None:
        """Wait until the client-side rate limit allows the next request."""
        if not self._min_interval:
            return
        now = self._clock()
        if now < self._next_request_at:
            self._sleep(self._next_request_at - now)
            now = self._next_request_at
        self._next_request_at = now + self._min_interval

    def _post(self, data: bytes) -> Any:
        """POST with retries; the decoded JSON body of the first success."""
        headers = self._headers()
        failures: list[str] = []
        for attempt in range(self.retry.max_retries + 1):
            self._throttle()
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            wait: float | None = None
            try:
                with _OPENER.open(request, timeout=self.timeout_s) as response:
                    raw = self._read_bounded(response)
            except urllib.error.HTTPError as err:
                if 300 <= err.code < 400:
                    raise self._redirect_error(err) from None
                if err.code != 429 and err.code < 500:
                    raise EmbeddingAPIError(f"HTTP {err.code}: {_error_detail(err)}", file=self.url) from None
                failures.append(f"HTTP {err.code}")
                wait = retry_after_seconds(err.headers.get("Retry-After") if err.headers else None)
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
                failures.append(
                    type(err).__name__ + (f" ({err.reason})" if isinstance(err, urllib.error.URLError) else "")
                )
            else:
                try:
                    return json.loads(raw)
                except (ValueError, RecursionError) as err:
                    reason = err if isinstance(err, ValueError) else "nested too deeply"
                    raise EmbeddingAPIError(
                        f"the response is not JSON ({reason})", file=self.url, field="(body)"
                    ) from None
            if attempt == self.retry.max_retries:
                break
            self._sleep(min(wait, self.retry.max_backoff_s) if wait is not None else self.retry.backoff(attempt))
        raise EmbeddingAPIError(f"no answer after {len(failures)} attempts ({', '.join(failures[-3:])})", file=self.url)

    def _read_bounded(self, response: http.client.HTTPResponse) -> bytes:
        """The body, refused (never read whole) past ``max_response_bytes``: a hostile endpoint cannot fill memory."""
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_response_bytes:
            raise self._too_large(f"declares {int(declared):,} bytes")
        raw = response.read(self.max_response_bytes + 1)
        if len(raw) > self.max_response_bytes:
            raise self._too_large("is longer")
        return raw

    def _too_large(self, what: str) -> EmbeddingAPIError:
        return EmbeddingAPIError(
            f"the response {what}; at most {self.max_response_bytes:,} bytes are read (max_response_bytes)",
            file=self.url,
            field="(body)",
        )

    def _redirect_error(self, err: urllib.error.HTTPError) -> EmbeddingAPIError:
        target = " ".join(str(err.headers.get("Location", "") if err.headers else "").split())[:200]
        return EmbeddingAPIError(
            f"HTTP {err.code}: the endpoint redirects to '{target}'; redirects are not followed (the API key stays "
            "with the configured host): set api_base_url to the final address",
            file=self.url,
        )

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self.name,
            "adapter": "openai-api",
            "api_base_url": self.base_url,
            "api_model": self.model,
            "dimensions": self.dimensions,
            "precision": "fp32",
        }


def _error_detail(err: urllib.error.HTTPError) -> str:
    """The endpoint's own error message (OpenAI's ``{"error": {"message": ...}}``), else the start of the body."""
    try:
        body = err.read(MAX_ERROR_BODY_BYTES).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return str(err.reason or "")
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError, RecursionError):
        message = body
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(str(message).split()))
    return shown[:300] or str(err.reason)
