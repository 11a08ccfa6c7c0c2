"""Azure Repos on Azure DevOps Services and Azure DevOps Server (Git REST API 7.1; for a server,
`--api-url https://HOST/COLLECTION-ROOT` and `azure:COLLECTION/PROJECT`)."""

from __future__ import annotations

import base64
import urllib.parse

from mlops_gen.fleet.hosts.base import Host, HostError, Proposal, RemoteRepo, UpdateRequest

API_VERSION = "7.1"
HEADS = "refs/heads/"
DESCRIPTION_LIMIT = 4000     # Azure Repos refuses longer pull request descriptions


class Azure(Host):
    kind = "azure"
    variable = "AZURE_DEVOPS_EXT_PAT"
    default_api = "https://dev.azure.com"

    def api_headers(self) -> dict[str, str]:
        return {"Authorization": self.git_header().split(": ", 1)[1]}

    def git_header(self) -> str:
        return "Authorization: Basic " + base64.b64encode(f":{self.token}".encode()).decode()

    @property
    def _project(self) -> str:
        org, _, project = self.owner.partition("/")
        return f"/{_q(org)}/{_q(project)}/_apis/git"

    def _call(self, method: str, path: str, query: dict | None = None, body: object = None) -> object:
        data, _ = self.http.request(method, self._project + path, query={**(query or {}), "api-version": API_VERSION},
                                    body=body)
        return data

    def list_repos(self) -> list[RemoteRepo]:
        found = self._call("GET", "/repositories")["value"]
        return [RemoteRepo(name=f"{self.owner}/{r['name']}", clone_url=r["remoteUrl"], key=r["id"],
                           default_branch=r["defaultBranch"].removeprefix(HEADS))
                for r in found if not r.get("isDisabled") and r.get("defaultBranch") and r.get("remoteUrl")]

    def read_file(self, repo: RemoteRepo, path: str) -> str | None:
        """The content when the host includes it; "" when the file exists but the documented
        listing call does not return content (the template is then checked after cloning)."""
        try:
            data = self._call("GET", f"/repositories/{repo.key}/items", {
                "scopePath": "/" + path, "recursionLevel": "none", "versionDescriptor.version": repo.default_branch,
                "versionDescriptor.versionType": "branch"})
        except HostError as error:
            if error.status == 404:
                return None
            raise
        items = [i for i in data.get("value", []) if not i.get("isFolder")]
        return (items[0].get("content") or "") if items else None

    def open_requests(self, repo: RemoteRepo) -> list[UpdateRequest]:
        found = self._call("GET", f"/repositories/{repo.key}/pullrequests", {"searchCriteria.status": "active",
                                                                             "$top": 1000})
        return [self._request(repo, p) for p in found["value"]]

    def create(self, repo: RemoteRepo, proposal: Proposal) -> UpdateRequest:
        data = self._call("POST", f"/repositories/{repo.key}/pullrequests", body={
            "sourceRefName": HEADS + proposal.branch, "targetRefName": HEADS + proposal.base,
            "title": proposal.title, "description": _limit(proposal.body), "isDraft": proposal.conflicts,
            "labels": [{"name": label} for label in proposal.labels]})
        return self._request(repo, data)

    def update(self, repo: RemoteRepo, request: UpdateRequest, proposal: Proposal) -> UpdateRequest:
        data = self._call("PATCH", f"/repositories/{repo.key}/pullrequests/{request.number}",
                          body={"title": proposal.title, "description": _limit(proposal.body)})
        return self._request(repo, data)

    def close(self, repo: RemoteRepo, request: UpdateRequest, comment: str) -> None:
        self._call("POST", f"/repositories/{repo.key}/pullRequests/{request.number}/threads",
                   body={"comments": [{"content": comment, "commentType": "text"}], "status": "closed"})
        self._call("PATCH", f"/repositories/{repo.key}/pullrequests/{request.number}", body={"status": "abandoned"})

    def _request(self, repo: RemoteRepo, data: dict) -> UpdateRequest:
        web = (data.get("repository") or {}).get("webUrl") or repo.clone_url.removesuffix(".git")
        return UpdateRequest(number=data["pullRequestId"], url=f"{web}/pullrequest/{data['pullRequestId']}",
                             branch=data["sourceRefName"].removeprefix(HEADS), title=data.get("title") or "",
                             body=data.get("description") or "", draft=bool(data.get("isDraft")),
                             labels=[label["name"] for label in data.get("labels") or []])


def _limit(text: str) -> str:
    return text if len(text) <= DESCRIPTION_LIMIT else text[:DESCRIPTION_LIMIT - 40] + "\n\n… (truncated: see the commit)"


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")
