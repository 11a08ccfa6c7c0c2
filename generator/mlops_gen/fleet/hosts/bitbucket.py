"""Bitbucket Cloud (REST API 2.0). Bitbucket has no pull request labels: a request with conflicts
is a draft and says so at the top of its description."""

from __future__ import annotations

import base64
import urllib.parse

from mlops_gen.fleet.hosts.base import Host, HostError, Proposal, RemoteRepo, UpdateRequest


class Bitbucket(Host):
    kind = "bitbucket"
    variable = "BITBUCKET_TOKEN"
    default_api = "https://api.bitbucket.org/2.0"

    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def git_header(self) -> str:
        return "Authorization: Basic " + base64.b64encode(f"x-token-auth:{self.token}".encode()).decode()

    def _values(self, path: str, query: dict) -> list:
        """Every item of a Bitbucket page chain (`values`, then the absolute `next` link)."""
        items: list = []
        next_url: str | None = path
        while next_url:
            data, _ = self.http.request("GET", next_url, query=query if next_url == path else None)
            items.extend(data.get("values", []))
            next_url = data.get("next")
        return items

    def list_repos(self) -> list[RemoteRepo]:
        found = self._values(f"/repositories/{_q(self.owner)}", {})
        repos = []
        for r in found:
            clone = next((link["href"] for link in r.get("links", {}).get("clone", []) if link.get("name") == "https"),
                         None)
            branch = (r.get("mainbranch") or {}).get("name")
            if clone and branch:
                repos.append(RemoteRepo(name=r["full_name"], clone_url=clone, default_branch=branch))
        return repos

    def read_file(self, repo: RemoteRepo, path: str) -> str | None:
        try:
            text, _ = self.http.request("GET", f"/repositories/{repo.name}/src/{_q(repo.default_branch)}/{_q(path)}",
                                        raw=True)
        except HostError as error:
            if error.status == 404:
                return None
            raise
        return str(text)

    def open_requests(self, repo: RemoteRepo) -> list[UpdateRequest]:
        return [_request(p) for p in self._values(f"/repositories/{repo.name}/pullrequests", {"state": "OPEN"})]

    def create(self, repo: RemoteRepo, proposal: Proposal) -> UpdateRequest:
        data, _ = self.http.request("POST", f"/repositories/{repo.name}/pullrequests", body={
            "type": "pullrequest", "title": proposal.title, "description": proposal.body,
            "source": {"branch": {"name": proposal.branch}}, "destination": {"branch": {"name": proposal.base}},
            "close_source_branch": True, "draft": proposal.conflicts})
        return _request(data)

    def update(self, repo: RemoteRepo, request: UpdateRequest, proposal: Proposal) -> UpdateRequest:
        data, _ = self.http.request("PUT", f"/repositories/{repo.name}/pullrequests/{request.number}", body={
            "type": "pullrequest", "title": proposal.title, "description": proposal.body})
        return _request(data)

    def close(self, repo: RemoteRepo, request: UpdateRequest, comment: str) -> None:
        self.http.request("POST", f"/repositories/{repo.name}/pullrequests/{request.number}/comments",
                          body={"type": "pullrequest_comment", "content": {"raw": comment}})
        self.http.request("POST", f"/repositories/{repo.name}/pullrequests/{request.number}/decline")


def _request(data: dict) -> UpdateRequest:
    return UpdateRequest(number=data["id"], url=data["links"]["html"]["href"],
                         branch=data["source"]["branch"]["name"], title=data.get("title") or "",
                         body=data.get("description") or (data.get("summary") or {}).get("raw") or "",
                         draft=bool(data.get("draft")))


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")
