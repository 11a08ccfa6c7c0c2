"""What every Git host client shares: a thin JSON-over-HTTPS layer on the standard library
(`urllib`: four hosts, a dozen calls each, no SDK's pagination or retry policy to work around),
rate-limit aware retries, and the token kept out of every message.

A host client lists a group's repositories, reads one file from each, and opens, updates and
closes the update requests; `Host` is that contract."""

from __future__ import annotations

import email.utils
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

USER_AGENT = "mlops-gen-fleet"
RETRIES = 5               # attempts per request, the first included
MAX_WAIT = 120.0          # seconds: a longer wait than this is a failure, not a sleep
RETRY_STATUS = {429, 500, 502, 503, 504}


class HostError(Exception):
    """A request failed; the message says which and why (never the token); `status` is the HTTP one."""

    status: int | None = None


class AuthError(HostError):
    """No token, or the host refused it: the run stops before anything is pushed."""


@dataclass
class RemoteRepo:
    name: str                 # as shown to the user: owner/name, group/path, project/name
    clone_url: str
    default_branch: str
    key: str = ""             # what the host's API calls it (id, slug), when not `name`


@dataclass
class UpdateRequest:
    number: int
    url: str
    branch: str
    title: str = ""
    body: str = ""
    draft: bool = False
    labels: list[str] = field(default_factory=list)


@dataclass
class Proposal:
    """One update request's content."""

    branch: str
    base: str
    title: str
    body: str
    conflicts: bool
    labels: list[str]


class Http:
    """JSON requests to one API root with one set of headers; counts what it sends."""

    def __init__(self, root: str, headers: dict[str, str], secret: str, *, host: str, variable: str) -> None:
        self.root = root.rstrip("/")
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
        self.secret = secret
        self.host, self.variable = host, variable
        self.count = 0
        self.waited = 0.0
        self._lock = threading.Lock()
        self._answered = False          # a 401/403 before any success means the token is refused

    def url(self, path: str, query: dict | None = None) -> str:
        if path.startswith(("http://", "https://")):
            if urllib.parse.urlsplit(path)[:2] != urllib.parse.urlsplit(self.root)[:2]:
                raise HostError(f"{self.host} sent a link outside {self.root}: not followed")
            url = path
        else:
            url = self.root + path
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query, doseq=True)
        return url

    def request(self, method: str, path: str, *, query: dict | None = None, body: object = None,
                raw: bool = False) -> tuple[object, dict[str, str]]:
        """(parsed JSON or text, response headers). Retries what the host says to retry."""
        url = self.url(path, query)
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if data is not None else {})}
        for attempt in range(1, RETRIES + 1):
            with self._lock:
                self.count += 1
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers, method=method),
                                            timeout=60) as response:
                    text = response.read().decode("utf-8", "replace")
                    self._answered = True
                    answer_headers = {k.lower(): v for k, v in response.headers.items()}
                    return (text if raw else (json.loads(text) if text.strip() else None)), answer_headers
            except urllib.error.HTTPError as error:
                answer_headers = {k.lower(): v for k, v in error.headers.items()}
                text = error.read().decode("utf-8", "replace")
                wait = retry_after(error.code, answer_headers, attempt)
                if wait is None or attempt == RETRIES:
                    raise self._error(method, url, error.code, text) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                reason = getattr(error, "reason", error)
                if attempt == RETRIES:
                    raise HostError(self._redact(f"{method} {url}: {reason}")) from None
                wait = min(2.0 ** attempt, 30.0)
            if wait > MAX_WAIT:
                raise HostError(f"{self.host} rate limit: retry allowed only in {wait:.0f} s (more than {MAX_WAIT:.0f})")
            with self._lock:
                self.waited += wait
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _error(self, method: str, url: str, status: int, text: str) -> HostError:
        try:
            detail = json.loads(text)
            detail = detail.get("message") or detail.get("error") or detail if isinstance(detail, dict) else detail
        except ValueError:
            detail = text.strip()
        message = self._redact(f"{method} {url}: HTTP {status}: {str(detail)[:200]}")
        if status in (401, 403) and not self._answered:
            return AuthError(f"{self.host} refused the token in {self.variable} (HTTP {status})")
        error = HostError(message)
        error.status = status
        return error

    def _redact(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text


def retry_after(status: int, headers: dict[str, str], attempt: int) -> float | None:
    """Seconds to wait before retrying, or None when the answer is final.

    Rate limits are 429, or 403 with the limit at zero (GitHub); the wait is Retry-After
    (seconds or an HTTP date), else the reset time (X-RateLimit-Reset, RateLimit-Reset: epoch
    seconds, or seconds from now when small). Server errors back off exponentially."""
    limited = status == 429 or (status == 403 and (headers.get("x-ratelimit-remaining") == "0"
                                                   or "retry-after" in headers))
    if not limited and status not in RETRY_STATUS:
        return None
    if "retry-after" in headers:
        value = headers["retry-after"].strip()
        if value.isdigit():
            return float(value)
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else 1.0
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        value = headers.get(name, "").strip()
        if value.isdigit():
            number = float(value)
            return max(0.0, number - time.time()) + 1 if number > 1e9 else number
    return min(2.0 ** attempt, 30.0) if status in RETRY_STATUS else None


def token_from_env(host: str, variable: str) -> str:
    token = os.environ.get(variable, "").strip()
    if not token:
        raise AuthError(f"{host}: no token: set {variable}")
    return token


class Host:
    """One organisation / group / project / workspace on one Git host."""

    kind = ""             # github | gitlab | azure | bitbucket
    variable = ""         # the token's environment variable
    default_api = ""

    def __init__(self, owner: str, api_url: str | None, token: str) -> None:
        self.owner = owner
        self.api_url = (api_url or self.default_api).rstrip("/")
        self.token = token
        self.http = Http(self.api_url, self.api_headers(), token, host=f"{self.kind}:{owner}",
                         variable=self.variable)

    # -- what a host implements --
    def api_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def git_header(self) -> str:
        """`Authorization: ...` header git sends for clone and push over HTTPS."""
        raise NotImplementedError

    def list_repos(self) -> list[RemoteRepo]:
        raise NotImplementedError

    def read_file(self, repo: RemoteRepo, path: str) -> str | None:
        """The file on the default branch, or None when it does not exist."""
        raise NotImplementedError

    def open_requests(self, repo: RemoteRepo) -> list[UpdateRequest]:
        raise NotImplementedError

    def create(self, repo: RemoteRepo, proposal: Proposal) -> UpdateRequest:
        raise NotImplementedError

    def update(self, repo: RemoteRepo, request: UpdateRequest, proposal: Proposal) -> UpdateRequest:
        raise NotImplementedError

    def close(self, repo: RemoteRepo, request: UpdateRequest, comment: str) -> None:
        raise NotImplementedError

    # -- shared --
    def pages(self, path: str, query: dict) -> list:
        """Every item of a paginated list that follows RFC 8288 `Link: <...>; rel="next"`."""
        items: list = []
        next_url: str | None = path
        while next_url:
            data, headers = self.http.request("GET", next_url, query=query if next_url == path else None)
            items.extend(data or [])
            next_url = next_link(headers.get("link", ""))
        return items


def next_link(header: str) -> str | None:
    for part in header.split(","):
        if 'rel="next"' in part and "<" in part:
            return part[part.index("<") + 1:part.index(">")]
    return None
