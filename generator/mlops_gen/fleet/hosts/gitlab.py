"""GitLab.com and self-managed GitLab (REST API v4; `--api-url https://HOST/api/v4`).
A merge request with conflicts is a draft (GitLab marks drafts by the `Draft:` title prefix).

Requests follow GitLab's OpenAPI document (doc/api/openapi/openapi_v2.yaml) where it has the
operation, its REST docs where it has not (group projects, merge request notes): label lists are
JSON arrays there, not comma-separated strings."""

from __future__ import annotations

import base64
import urllib.parse

from mlops_gen.fleet.hosts.base import Host, HostError, Proposal, RemoteRepo, UpdateRequest

DRAFT = "Draft: "


class GitLab(Host):
    kind = "gitlab"
    variable = "GITLAB_TOKEN"
    default_api = "https://gitlab.com/api/v4"

    def api_headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.token}

    def git_header(self) -> str:
        basic = base64.b64encode(f"oauth2:{self.token}".encode()).decode()
        return f"Authorization: Basic {basic}"

    def list_repos(self) -> list[RemoteRepo]:
        found = self.pages(f"/groups/{_q(self.owner)}/projects",
                           {"include_subgroups": "true", "with_shared": "false", "archived": "false",
                            "per_page": 100})
        return [RemoteRepo(name=p["path_with_namespace"], clone_url=p["http_url_to_repo"],
                           default_branch=p.get("default_branch") or "main", key=str(p["id"]))
                for p in found if p.get("http_url_to_repo") and p.get("default_branch")]

    def read_file(self, repo: RemoteRepo, path: str) -> str | None:
        try:
            text, _ = self.http.request("GET", f"/projects/{repo.key}/repository/files/{_q(path)}/raw",
                                        query={"ref": repo.default_branch}, raw=True)
        except HostError as error:
            if error.status == 404:
                return None
            raise
        return str(text)

    def open_requests(self, repo: RemoteRepo) -> list[UpdateRequest]:
        found = self.pages(f"/projects/{repo.key}/merge_requests", {"state": "opened", "per_page": 100})
        return [_request(m) for m in found]

    def create(self, repo: RemoteRepo, proposal: Proposal) -> UpdateRequest:
        data, _ = self.http.request("POST", f"/projects/{repo.key}/merge_requests", body={
            "source_branch": proposal.branch, "target_branch": proposal.base, "title": _title(proposal),
            "description": proposal.body, "labels": list(proposal.labels), "remove_source_branch": True})
        return _request(data)

    def update(self, repo: RemoteRepo, request: UpdateRequest, proposal: Proposal) -> UpdateRequest:
        data, _ = self.http.request("PUT", f"/projects/{repo.key}/merge_requests/{request.number}", body={
            "title": _title(proposal), "description": proposal.body, "add_labels": list(proposal.labels)})
        return _request(data)

    def close(self, repo: RemoteRepo, request: UpdateRequest, comment: str) -> None:
        self.http.request("POST", f"/projects/{repo.key}/merge_requests/{request.number}/notes",
                          body={"body": comment})
        self.http.request("PUT", f"/projects/{repo.key}/merge_requests/{request.number}",
                          body={"state_event": "close"})


def _title(proposal: Proposal) -> str:
    return DRAFT + proposal.title if proposal.conflicts else proposal.title


def _request(data: dict) -> UpdateRequest:
    title = data.get("title") or ""
    return UpdateRequest(number=data["iid"], url=data["web_url"], branch=data["source_branch"],
                         title=title.removeprefix(DRAFT), body=data.get("description") or "",
                         draft=bool(data.get("draft")) or title.startswith(DRAFT), labels=list(data.get("labels") or []))


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")
