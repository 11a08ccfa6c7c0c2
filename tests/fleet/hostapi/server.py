"""A local stand-in for GitHub, GitLab, Azure Repos and Bitbucket Cloud on 127.0.0.1, for the fleet's
host tests and benchmark. Every request is first checked against the host's published API
description (`openapi.Spec`); one it does not allow is answered 400 and recorded in
`violations`, which the tests assert empty. Answers are built from the documents' own examples
(GitHub) or their schemas, and checked against the documented response schema too.

Repositories are bare git repositories on disk (clone URLs are file://), so pushes, branches and
pre-receive hooks are real git. Mounts: /github, /gitlab/api/v4, /azure, /bitbucket/2.0."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from tests.fleet.hostapi.openapi import Operation, Spec, SpecViolation

HOSTS = ("github", "gitlab", "azure", "bitbucket")
MOUNTS = {"github": "/github", "gitlab": "/gitlab", "azure": "/azure", "bitbucket": "/bitbucket"}
# Path prefix of the API root when the document has no base path (GitLab's paths start /api/v4).
API_ROOT = {"gitlab": "/api/v4"}


@dataclass
class FakeRepo:
    owner: str
    name: str
    bare: Path
    default_branch: str = "main"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def show(self, ref: str, path: str) -> str | None:
        proc = subprocess.run(["git", "--git-dir", str(self.bare), "show", f"{ref}:{path}"], capture_output=True,
                              text=True, check=False)
        return proc.stdout if proc.returncode == 0 else None

    def has_branch(self, branch: str) -> bool:
        return subprocess.run(["git", "--git-dir", str(self.bare), "rev-parse", "--verify", "-q",
                               f"refs/heads/{branch}"], capture_output=True, check=False).returncode == 0


@dataclass
class FakeRequest:
    number: int
    branch: str
    base: str
    title: str
    body: str
    draft: bool = False
    state: str = "open"           # open | closed
    labels: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


class Answer(Exception):
    """An error answer (status, JSON body) from a fake host."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class World:
    """What the hosts hold: repositories per (host, owner), their requests, injected faults."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], list[FakeRepo]] = {}
        self.requests: dict[str, list[FakeRequest]] = {}        # FakeRepo.id -> requests
        self.tokens = {h: f"{h}-secret-{uuid.uuid4().hex}" for h in HOSTS}
        self.throttle: dict[str, int] = {}                       # host -> rate-limited answers still to give
        self.log: list[tuple[str, str, str, int]] = []          # (host, method, path, status)
        self.violations: list[str] = []
        self.lock = threading.Lock()
        self._numbers = itertools.count(1)

    def add(self, host: str, owner: str, repo: FakeRepo) -> None:
        self.repos.setdefault((host, owner), []).append(repo)
        self.requests[repo.id] = []

    def find(self, host: str, owner: str, name: str) -> FakeRepo:
        for repo in self.repos.get((host, owner), []):
            if name in (repo.name, repo.id):
                return repo
        raise Answer(404, "Not Found")

    def open_requests(self, repo: FakeRepo) -> list[FakeRequest]:
        return [r for r in self.requests[repo.id] if r.state == "open"]

    def request(self, repo: FakeRepo, number: int) -> FakeRequest:
        for found in self.requests[repo.id]:
            if found.number == number:
                return found
        raise Answer(404, "Not Found")

    def create(self, repo: FakeRepo, branch: str, base: str, title: str, body: str, draft: bool) -> FakeRequest:
        if not repo.has_branch(branch):
            raise Answer(422, f"head branch {branch} does not exist")
        if any(r.branch == branch for r in self.open_requests(repo)):
            raise Answer(422, f"a pull request already exists for {branch}")
        with self.lock:
            created = FakeRequest(next(self._numbers), branch, base, title, body, draft)
        self.requests[repo.id].append(created)
        return created

    def requests_made(self, host: str) -> int:
        return sum(1 for entry in self.log if entry[0] == host)


# ---- the hosts' answers ---------------------------------------------------------------------

class GitHubFake:
    def __init__(self, world: World, spec: Spec, base_url: str) -> None:
        self.world, self.spec, self.base_url = world, spec, base_url

    def authorized(self, headers) -> bool:
        return headers.get("Authorization") == f"Bearer {self.world.tokens['github']}"

    def limited(self) -> tuple[int, dict, dict]:
        return 403, {"message": "API rate limit exceeded"}, {"x-ratelimit-remaining": "0", "retry-after": "1"}

    def _pull(self, op_key: tuple[str, str, int], repo: FakeRepo, pr: FakeRequest, simple: bool) -> dict:
        data = self.spec.example(self.spec.match(*op_key[:2]), op_key[2])
        data = data[0] if simple else data
        label = data["labels"][0] if data.get("labels") else None
        data.update(number=pr.number, title=pr.title, body=pr.body, draft=pr.draft, state=pr.state,
                    html_url=f"https://github.example/{repo.owner}/{repo.name}/pull/{pr.number}",
                    requested_teams=[], labels=[{**label, "name": n} for n in pr.labels] if label else [])
        data["head"]["ref"], data["base"]["ref"] = pr.branch, pr.base
        return data

    def handle(self, op: Operation, query: dict, body: dict | None) -> tuple[int, object, dict]:
        p, w = op.params, self.world
        if op.template == "/orgs/{org}/repos":
            repos = w.repos.get(("github", p["org"]), [])
            size, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
            item = self.spec.example(op, 200)[0]
            out = [{**item, "name": r.name, "full_name": f"{r.owner}/{r.name}", "clone_url": r.url,
                    "default_branch": r.default_branch, "archived": False}
                   for r in repos[(page - 1) * size:page * size]]
            headers = {}
            if page * size < len(repos):
                headers["Link"] = (f'<{self.base_url}/orgs/{p["org"]}/repos?per_page={size}&page={page + 1}'
                                   '&type=all>; rel="next"')
            return 200, out, headers
        repo = w.find("github", p["owner"], p["repo"])
        if op.template.endswith("/contents/{path}"):
            text = repo.show(query.get("ref", [repo.default_branch])[0], p["path"])
            if text is None:
                raise Answer(404, "Not Found")
            data = self.spec.example(op, 200, "response-if-content-is-a-file")
            data.update(type="file", name=p["path"], path=p["path"], encoding="base64",
                        content=base64.b64encode(text.encode()).decode())
            return 200, data, {}
        if op.template == "/repos/{owner}/{repo}/pulls" and op.method == "get":
            key = ("GET", "/repos/o/r/pulls", 200)
            return 200, [self._pull(key, repo, r, True) for r in w.open_requests(repo)], {}
        if op.template == "/repos/{owner}/{repo}/pulls":
            pr = w.create(repo, body["head"], body["base"], body.get("title", ""), body.get("body", ""),
                          bool(body.get("draft")))
            return 201, self._pull(("POST", "/repos/o/r/pulls", 201), repo, pr, False), {}
        if op.template.endswith("/pulls/{pull_number}"):
            pr = w.request(repo, int(p["pull_number"]))
            pr.title, pr.body = body.get("title", pr.title), body.get("body", pr.body)
            pr.state = body.get("state", pr.state)
            return 200, self._pull(("PATCH", "/repos/o/r/pulls/1", 200), repo, pr, False), {}
        pr = w.request(repo, int(p["issue_number"]))
        if op.template.endswith("/labels"):
            pr.labels += [n for n in body["labels"] if n not in pr.labels]
            item = self.spec.example(op, 200)[0]
            return 200, [{**item, "name": n} for n in pr.labels], {}
        pr.comments.append(body["body"])
        return 201, {**self.spec.example(op, 201), "body": body["body"]}, {}


class GitLabFake:
    """GitLab REST v4. Projects are numbered (GitLab's `id`), also found by their full path; merge
    request answers carry what the client reads (labels as arrays, `draft` a boolean, as the
    service answers; the document's entities declare them strings, so answers are not checked)."""

    def __init__(self, world: World, spec: Spec, base_url: str) -> None:
        self.world, self.spec, self.base_url = world, spec, base_url + API_ROOT["gitlab"]

    def authorized(self, headers) -> bool:
        return headers.get("PRIVATE-TOKEN") == self.world.tokens["gitlab"]

    def limited(self) -> tuple[int, dict, dict]:
        return 429, {"message": "Retry later"}, {"Retry-After": "1", "RateLimit-Remaining": "0"}

    def _projects(self) -> list[tuple[int, str, FakeRepo]]:
        found = [(owner, repo) for (host, owner), repos in self.world.repos.items() if host == "gitlab"
                 for repo in repos]
        return [(number, owner, repo) for number, (owner, repo) in enumerate(found, start=100)]

    def _project(self, key: str) -> tuple[int, str, FakeRepo]:
        for number, owner, repo in self._projects():
            if key in (str(number), f"{owner}/{repo.name}"):
                return number, owner, repo
        raise Answer(404, "404 Project Not Found")

    def _mr(self, number: int, owner: str, repo: FakeRepo, mr: FakeRequest) -> dict:
        return {"id": 10_000 + mr.number, "iid": mr.number, "project_id": number, "title": mr.title,
                "description": mr.body, "state": "opened" if mr.state == "open" else "closed",
                "source_branch": mr.branch, "target_branch": mr.base, "labels": list(mr.labels),
                "draft": mr.draft, "work_in_progress": mr.draft,
                "web_url": f"https://gitlab.example/{owner}/{repo.name}/-/merge_requests/{mr.number}"}

    def handle(self, op: Operation, query: dict, body: dict | None) -> tuple[int, object, dict]:
        p, w = op.params, self.world
        if op.template == "/api/v4/groups/{id}/projects":
            group = p["id"]
            mine = [(n, o, r) for n, o, r in self._projects()
                    if o == group or (query.get("include_subgroups") == ["true"] and o.startswith(group + "/"))]
            size, page = int(query.get("per_page", ["20"])[0]), int(query.get("page", ["1"])[0])
            out = [{"id": n, "name": r.name, "path": r.name, "path_with_namespace": f"{o}/{r.name}",
                    "http_url_to_repo": r.url, "default_branch": r.default_branch, "archived": False,
                    "web_url": f"https://gitlab.example/{o}/{r.name}"} for n, o, r in mine[(page - 1) * size:page * size]]
            headers = {}
            if page * size < len(mine):
                rest = "&".join(f"{k}={v[0]}" for k, v in sorted(query.items()) if k != "page")
                headers["Link"] = (f'<{self.base_url}/groups/{quote(group, safe="")}/projects?{rest}&page={page + 1}>; '
                                   'rel="next"')
            return 200, out, headers
        number, owner, repo = self._project(p["id"])
        if op.template.endswith("/raw"):
            text = repo.show(query.get("ref", [repo.default_branch])[0], p["file_path"])
            if text is None:
                raise Answer(404, "404 File Not Found")
            return 200, text, {}
        if op.template == "/api/v4/projects/{id}/merge_requests" and op.method == "get":
            wanted = query.get("state", ["all"])[0]
            found = [r for r in w.requests[repo.id] if wanted == "all" or (r.state == "open") == (wanted == "opened")]
            return 200, [self._mr(number, owner, repo, r) for r in found], {}
        if op.template == "/api/v4/projects/{id}/merge_requests":
            mr = w.create(repo, body["source_branch"], body["target_branch"], body["title"],
                          body.get("description", ""), body["title"].startswith("Draft: "))
            mr.labels = list(body.get("labels", []))
            return 201, self._mr(number, owner, repo, mr), {}
        mr = w.request(repo, int(p["merge_request_iid"]))
        if op.template.endswith("/notes"):
            mr.comments.append(body["body"])
            return 201, {"id": len(mr.comments), "body": body["body"], "noteable_type": "MergeRequest",
                         "noteable_iid": mr.number, "system": False}, {}
        mr.title, mr.body = body.get("title", mr.title), body.get("description", mr.body)
        mr.draft = mr.title.startswith("Draft: ")
        mr.labels += [n for n in body.get("add_labels", []) if n not in mr.labels]
        if body.get("state_event") == "close":
            mr.state = "closed"
        return 200, self._mr(number, owner, repo, mr), {}


class AzureFake:
    def __init__(self, world: World, spec: Spec, base_url: str) -> None:
        self.world, self.spec, self.base_url = world, spec, base_url

    def authorized(self, headers) -> bool:
        expected = base64.b64encode(f":{self.world.tokens['azure']}".encode()).decode()
        return headers.get("Authorization") == f"Basic {expected}"

    def limited(self) -> tuple[int, dict, dict]:
        return 429, {"message": "TF400733: request was blocked"}, {"Retry-After": "1"}

    def _pull(self, repo: FakeRepo, pr: FakeRequest) -> dict:
        return {"pullRequestId": pr.number, "title": pr.title, "description": pr.body, "isDraft": pr.draft,
                "sourceRefName": f"refs/heads/{pr.branch}", "targetRefName": f"refs/heads/{pr.base}",
                "status": "active" if pr.state == "open" else "abandoned", "labels": [{"name": n} for n in pr.labels],
                "repository": {"id": repo.id, "name": repo.name, "webUrl": f"https://dev.example/{repo.name}"}}

    def handle(self, op: Operation, query: dict, body: dict | None) -> tuple[int, object, dict]:
        p, w = op.params, self.world
        owner = f"{p['organization']}/{p['project']}"
        if op.template.endswith("/repositories"):
            repos = w.repos.get(("azure", owner), [])
            return 200, [{"id": r.id, "name": r.name, "remoteUrl": r.url, "defaultBranch": f"refs/heads/{r.default_branch}",
                          "webUrl": f"https://dev.example/{r.name}"} for r in repos], {}
        repo = w.find("azure", owner, p["repositoryId"])
        if op.template.endswith("/items"):
            ref = query.get("versionDescriptor.version", [repo.default_branch])[0]
            path = query["scopePath"][0].lstrip("/")
            if repo.show(ref, path) is None:
                raise Answer(404, f"TF401174: The item '{path}' could not be found")
            return 200, [{"path": "/" + path, "gitObjectType": "blob", "isFolder": False}], {}
        if op.template.endswith("/pullrequests") and op.method == "get":
            return 200, [self._pull(repo, r) for r in w.open_requests(repo)], {}
        if op.template.endswith("/pullrequests"):
            pr = w.create(repo, body["sourceRefName"].removeprefix("refs/heads/"),
                          body["targetRefName"].removeprefix("refs/heads/"), body["title"], body.get("description", ""),
                          bool(body.get("isDraft")))
            pr.labels = [label["name"] for label in body.get("labels", [])]
            return 200, self._pull(repo, pr), {}
        pr = w.request(repo, int(p["pullRequestId"]))
        if op.template.endswith("/threads"):
            pr.comments += [c["content"] for c in body["comments"]]
            return 200, {"id": len(pr.comments), "comments": body["comments"], "status": body.get("status")}, {}
        pr.title, pr.body = body.get("title", pr.title), body.get("description", pr.body)
        if body.get("status") == "abandoned":
            pr.state = "closed"
        return 200, self._pull(repo, pr), {}


class BitbucketFake:
    # One page: the document declares no `page` parameter for this listing, so following a
    # `next` link (which carries one on the real host) would be refused by the validator.
    PAGE = 1000

    def __init__(self, world: World, spec: Spec, base_url: str) -> None:
        self.world, self.spec, self.base_url = world, spec, base_url

    def authorized(self, headers) -> bool:
        return headers.get("Authorization") == f"Bearer {self.world.tokens['bitbucket']}"

    def limited(self) -> tuple[int, dict, dict]:
        return 429, {"type": "error", "error": {"message": "Rate limit for this resource has been exceeded"}}, \
            {"Retry-After": "1"}

    def _pull(self, repo: FakeRepo, pr: FakeRequest) -> dict:
        return {"type": "pullrequest", "id": pr.number, "title": pr.title, "description": pr.body,
                "summary": {"raw": pr.body}, "draft": pr.draft,
                "state": "OPEN" if pr.state == "open" else "DECLINED",
                "source": {"branch": {"name": pr.branch}}, "destination": {"branch": {"name": pr.base}},
                "links": {"html": {"href": f"https://bitbucket.example/{repo.owner}/{repo.name}/pull-requests/"
                                           f"{pr.number}"}}}

    def handle(self, op: Operation, query: dict, body: dict | None) -> tuple[int, object, dict]:
        p, w = op.params, self.world
        if op.template == "/repositories/{workspace}":
            repos = w.repos.get(("bitbucket", p["workspace"]), [])
            page = int(query.get("page", ["1"])[0]) if "page" in query else 1
            chunk = repos[(page - 1) * self.PAGE:page * self.PAGE]
            data = {"pagelen": self.PAGE, "size": len(repos), "page": page, "values": [
                {"type": "repository", "full_name": f"{r.owner}/{r.name}", "slug": r.name,
                 "mainbranch": {"type": "branch", "name": r.default_branch},
                 "links": {"clone": [{"name": "https", "href": r.url}]}} for r in chunk]}
            if page * self.PAGE < len(repos):
                data["next"] = f"{self.base_url}/2.0/repositories/{p['workspace']}?q=&page={page + 1}"
            return 200, data, {}
        repo = w.find("bitbucket", p["workspace"], p["repo_slug"])
        if op.template.endswith("/src/{commit}/{path}"):
            text = repo.show(p["commit"], p["path"])
            if text is None:
                raise Answer(404, "No such file or directory")
            return 200, text, {}
        if op.template.endswith("/pullrequests") and op.method == "get":
            return 200, {"pagelen": 50, "size": 0, "values": [self._pull(repo, r) for r in w.open_requests(repo)]}, {}
        if op.template.endswith("/pullrequests"):
            pr = w.create(repo, body["source"]["branch"]["name"], body["destination"]["branch"]["name"],
                          body["title"], body.get("description", ""), bool(body.get("draft")))
            return 201, self._pull(repo, pr), {}
        pr = w.request(repo, int(p["pull_request_id"]))
        if op.template.endswith("/comments"):
            pr.comments.append(body["content"]["raw"])
            return 201, {"type": "pullrequest_comment", "id": len(pr.comments), "content": body["content"]}, {}
        if op.template.endswith("/decline"):
            pr.state = "closed"
            return 200, self._pull(repo, pr), {}
        pr.title, pr.body = body.get("title", pr.title), body.get("description", pr.body)
        return 200, self._pull(repo, pr), {}


FAKES = {"github": GitHubFake, "gitlab": GitLabFake, "azure": AzureFake, "bitbucket": BitbucketFake}


# ---- HTTP -----------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    server: ApiServer

    def log_message(self, format: str, *args: object) -> None:   # quiet: the tests read `world.log`
        return

    def _serve(self) -> None:
        url = urlsplit(self.path)
        host = next((h for h, mount in MOUNTS.items() if url.path.startswith(mount + "/")), None)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if host is None:
            return self._send(404, {"message": "no such host"})
        fake, spec, world = self.server.fakes[host], self.server.specs[host], self.server.world
        path = url.path[len(MOUNTS[host]):]
        query = parse_qs(url.query, keep_blank_values=True)
        status, data, headers = self._answer(host, fake, spec, path, query, raw)
        with world.lock:
            world.log.append((host, self.command, path, status))
        self._send(status, data, headers)

    def _answer(self, host: str, fake, spec: Spec, path: str, query: dict, raw: bytes) -> tuple[int, object, dict]:
        world = self.server.world
        with world.lock:
            throttled = world.throttle.get(host, 0) > 0
            if throttled:
                world.throttle[host] -= 1
        if throttled:
            return fake.limited()
        if not fake.authorized(self.headers):
            return 401, {"message": "Bad credentials"}, {}
        try:
            op = spec.check_request(self.command, path, query, self.headers.get("Content-Type", ""), raw)
        except SpecViolation as error:
            world.violations.append(f"{host}: {error}")
            return 400, {"message": f"not allowed by the API description: {error}"}, {}
        try:
            status, data, headers = fake.handle(op, query, json.loads(raw) if raw else None)
        except Answer as error:
            return error.status, {"message": str(error)}, {}
        except Exception as error:      # a bug of the fake: fail the test, answer like a host would
            world.violations.append(f"{host} (fake crashed): {type(error).__name__}: {error}")
            return 500, {"message": "internal error"}, {}
        try:
            spec.check_response(op, status, data["value"] if isinstance(data, dict) and "value" in data
                                and host == "azure" else data if not isinstance(data, str) else None)
        except SpecViolation as error:
            world.violations.append(f"{host} (fake's answer): {error}")
        if host == "azure" and isinstance(data, list):      # Azure wraps every collection
            data = {"count": len(data), "value": data}
        return status, data, headers

    def _send(self, status: int, data: object, headers: dict | None = None) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(data, str) else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, world: World) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.world = world
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.specs = {h: Spec(h) for h in HOSTS}
        self.fakes = {h: FAKES[h](world, self.specs[h], self.url + MOUNTS[h]) for h in HOSTS}
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def api_url(self, host: str) -> str:
        return self.url + MOUNTS[host] + self.specs[host].base + API_ROOT.get(host, "")

    def __enter__(self) -> ApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
