"""GitHub and GitHub Enterprise Server (REST API v3; `--api-url https://HOST/api/v3`)."""

from __future__ import annotations

import base64
import urllib.parse

from mlops_gen.fleet.hosts.base import Host, HostError, Proposal, RemoteRepo, UpdateRequest

API_VERSION = "2022-11-28"


class GitHub(Host):
    kind = "github"
    variable = "GITHUB_TOKEN"
    default_api = "https://api.github.com"

    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION}

    def git_header(self) -> str:
        basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        return f"Authorization: Basic {basic}"

    def list_repos(self) -> list[RemoteRepo]:
        found = self.pages(f"/orgs/{_q(self.owner)}/repos", {"per_page": 100, "type": "all"})
        return [RemoteRepo(name=r["full_name"], clone_url=r["clone_url"], default_branch=r["default_branch"])
                for r in found if not r.get("archived") and not r.get("disabled") and r.get("clone_url")]

    def read_file(self, repo: RemoteRepo, path: str) -> str | None:
        try:
            data, _ = self.http.request("GET", f"/repos/{repo.name}/contents/{_q(path)}",
                                        query={"ref": repo.default_branch})
        except HostError as error:
            if error.status == 404:
                return None
            raise
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        return base64.b64decode(data.get("content") or "").decode("utf-8", "replace")

    def open_requests(self, repo: RemoteRepo) -> list[UpdateRequest]:
        found = self.pages(f"/repos/{repo.name}/pulls", {"state": "open", "per_page": 100})
        return [_request(p) for p in found]

    def create(self, repo: RemoteRepo, proposal: Proposal) -> UpdateRequest:
        data, _ = self.http.request("POST", f"/repos/{repo.name}/pulls", body={
            "title": proposal.title, "head": proposal.branch, "base": proposal.base, "body": proposal.body,
            "draft": proposal.conflicts, "maintainer_can_modify": True})
        request = _request(data)
        self._label(repo, request, proposal.labels)
        return request

    def update(self, repo: RemoteRepo, request: UpdateRequest, proposal: Proposal) -> UpdateRequest:
        data, _ = self.http.request("PATCH", f"/repos/{repo.name}/pulls/{request.number}",
                                    body={"title": proposal.title, "body": proposal.body})
        updated = _request(data)
        self._label(repo, updated, [label for label in proposal.labels if label not in request.labels])
        return updated

    def close(self, repo: RemoteRepo, request: UpdateRequest, comment: str) -> None:
        self.http.request("POST", f"/repos/{repo.name}/issues/{request.number}/comments", body={"body": comment})
        self.http.request("PATCH", f"/repos/{repo.name}/pulls/{request.number}", body={"state": "closed"})

    def _label(self, repo: RemoteRepo, request: UpdateRequest, labels: list[str]) -> None:
        if labels:
            self.http.request("POST", f"/repos/{repo.name}/issues/{request.number}/labels", body={"labels": labels})
            request.labels = [*request.labels, *labels]


def _request(data: dict) -> UpdateRequest:
    return UpdateRequest(number=data["number"], url=data["html_url"], branch=data["head"]["ref"],
                         title=data.get("title") or "", body=data.get("body") or "", draft=bool(data.get("draft")),
                         labels=[label["name"] for label in data.get("labels") or []])


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")
