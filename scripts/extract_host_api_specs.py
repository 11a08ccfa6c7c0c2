"""Vendor the part of each Git host's published API description that `mlops-gen fleet` calls.

    python scripts/extract_host_api_specs.py --github api.github.com.json --azure git.json \
        --bitbucket node-bitbucket/specification [--gitlab openapi_v2.yaml]

For GitLab the operations its document lacks are added from DOC_DERIVED (written from GitLab's REST
documentation, each marked `x-derived-from`), and its response schemas are not kept (see
NO_RESPONSE_SCHEMAS).

Each input is the host's full document (see tests/fleet/hostapi/specs/README.md for where each
comes from). Only the operations listed in OPERATIONS are kept, with everything they reference
(`$ref`, transitively: schemas, parameters, responses, examples); prose (descriptions, summaries)
is dropped to keep the files small. The test server in tests/fleet/hostapi validates every request
against these files, so a call the host's document does not allow fails the tests.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "tests" / "fleet" / "hostapi" / "specs"

OPERATIONS = {
    "github": {
        "/orgs/{org}/repos": ["get"],
        "/repos/{owner}/{repo}/contents/{path}": ["get"],
        "/repos/{owner}/{repo}/pulls": ["get", "post"],
        "/repos/{owner}/{repo}/pulls/{pull_number}": ["patch"],
        "/repos/{owner}/{repo}/issues/{issue_number}/labels": ["post"],
        "/repos/{owner}/{repo}/issues/{issue_number}/comments": ["post"],
    },
    "gitlab": {     # the rest of what the client calls is not in GitLab's document: see DOC_DERIVED
        "/api/v4/projects/{id}/repository/files/{file_path}/raw": ["get"],
        "/api/v4/projects/{id}/merge_requests": ["get", "post"],
        "/api/v4/projects/{id}/merge_requests/{merge_request_iid}": ["put"],
    },
    "azure": {
        "/{organization}/{project}/_apis/git/repositories": ["get"],
        "/{organization}/{project}/_apis/git/repositories/{repositoryId}/items": ["get"],
        "/{organization}/{project}/_apis/git/repositories/{repositoryId}/pullrequests": ["get", "post"],
        "/{organization}/{project}/_apis/git/repositories/{repositoryId}/pullrequests/{pullRequestId}": ["patch"],
        "/{organization}/{project}/_apis/git/repositories/{repositoryId}/pullRequests/{pullRequestId}/threads":
            ["post"],
    },
    "bitbucket": {
        "/repositories/{workspace}": ["get"],
        "/repositories/{workspace}/{repo_slug}/src/{commit}/{path}": ["get"],
        "/repositories/{workspace}/{repo_slug}/pullrequests": ["get", "post"],
        "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}": ["put"],
        "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/decline": ["post"],
        "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/comments": ["post"],
    },
}
# GitLab's openapi_v2.yaml is incomplete: it documents only the APIs mounted in the documented part of
# lib/api/api.rb. At gitlabhq/gitlabhq@38605be5543221e400c72b4c42471cd55392e394 it has no operation for
# listing a group's projects (lib/api/groups.rb) nor for merge request notes (lib/api/notes.rb). These
# two are written from GitLab's REST documentation instead, each marked `x-derived-from` with its source;
# parameter shapes follow the document's own conventions (`page`/`per_page` as on every paginated list).
GITLAB_DOCS = "gitlabhq/gitlabhq"
DOC_DERIVED = {
    "gitlab": {
        "/api/v4/groups/{id}/projects": {"get": {
            "x-derived-from": "GitLab REST docs, Groups API, 'List a group's projects' (GET /groups/:id/projects; "
                              "doc/api/groups.md, published as https://docs.gitlab.com/ee/api/groups.html); "
                              "page/per_page: 'Pagination' in doc/api/rest/index.md",
            "produces": ["application/json"],
            "parameters": [
                {"in": "path", "name": "id", "type": "string", "required": True},
                *({"in": "query", "name": name, "type": "boolean", "required": False}
                  for name in ("archived", "simple", "owned", "starred", "with_issues_enabled",
                               "with_merge_requests_enabled", "with_shared", "include_subgroups",
                               "with_custom_attributes", "with_security_reports")),
                {"in": "query", "name": "visibility", "type": "string", "enum": ["public", "internal", "private"],
                 "required": False},
                {"in": "query", "name": "order_by", "type": "string", "required": False,
                 "enum": ["id", "name", "path", "created_at", "updated_at", "last_activity_at"]},
                {"in": "query", "name": "sort", "type": "string", "enum": ["asc", "desc"], "required": False},
                {"in": "query", "name": "search", "type": "string", "required": False},
                {"in": "query", "name": "min_access_level", "type": "integer", "required": False},
                {"in": "query", "name": "page", "type": "integer", "format": "int32", "default": 1,
                 "required": False},
                {"in": "query", "name": "per_page", "type": "integer", "format": "int32", "default": 20,
                 "required": False},
            ],
            "responses": {"200": {"description": "List a group's projects"}},
        }},
        "/api/v4/projects/{id}/merge_requests/{merge_request_iid}/notes": {"post": {
            "x-derived-from": f"{GITLAB_DOCS}@077b92f78ba9cd89df1003a0e733f3620d6970b4 doc/api/notes.md, "
                              "'Create new merge request note' (POST /projects/:id/merge_requests/:merge_request_iid"
                              "/notes); 201: status of a successful POST, doc/api/rest/index.md",
            "produces": ["application/json"],
            "consumes": ["application/json"],
            "parameters": [
                {"in": "path", "name": "id", "type": "string", "required": True},
                {"in": "path", "name": "merge_request_iid", "type": "integer", "required": True},
                {"in": "body", "name": "body", "required": True, "schema": {
                    "type": "object", "required": ["body"],
                    "properties": {"body": {"type": "string", "maxLength": 1000000},
                                   "created_at": {"type": "string"},
                                   "merge_request_diff_head_sha": {"type": "string"}}}},
            ],
            "responses": {"201": {"description": "Create new merge request note"}},
        }},
    },
}
# Hosts whose documented answers are not kept: GitLab's entities type most exposures `string` (`labels`,
# `draft`, `iid` of the list entity's neighbours...) and its list operations answer one entity, not an
# array; the service answers arrays, booleans and lists, so its answers cannot be checked against them.
NO_RESPONSE_SCHEMAS = {"gitlab"}
# Top-level keys kept besides paths and what they reference (servers, base path, security).
HEADER_KEYS = ("openapi", "swagger", "info", "servers", "host", "basePath", "schemes", "consumes", "produces",
               "security", "securityDefinitions")
PROSE = {"description", "summary", "externalDocs", "x-github", "x-octokit", "x-ms-docs-override-version",
         "x-ms-preview", "x-ms-vss-resource", "x-ms-vss-method", "x-ms-examples", "tags"}
DATA = {"example", "examples", "value", "default", "enum"}


def load(path: Path) -> dict:
    if path.is_dir():   # node-bitbucket keeps api.bitbucket.org/swagger.json split in parts
        doc = json.loads((path / "others.json").read_text())
        for part in ("paths", "definitions", "securityDefinitions", "tags"):
            doc[part] = json.loads((path / f"{part}.json").read_text())
        return doc
    text = path.read_text(encoding="utf-8-sig")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def pointer(doc: dict, ref: str) -> tuple[list[str], object]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
    node = doc
    for part in parts:
        node = node[part]
    return parts, node


def strip(node: object, in_properties: bool = False) -> object:
    """The node without prose; keys of a `properties` map are property names, always kept, and
    examples, defaults and enums are data, kept as they are."""
    if isinstance(node, dict):
        return {k: v if k in DATA and not in_properties else strip(v, k == "properties" and not in_properties)
                for k, v in node.items() if in_properties or k not in PROSE}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node: object) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            found.add(node["$ref"])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def subset(doc: dict, operations: dict[str, list[str]], *, responses: bool = True) -> dict:
    out = {k: doc[k] for k in HEADER_KEYS if k in doc}
    out["paths"] = {}
    for path, methods in operations.items():
        item = doc["paths"][path]
        out["paths"][path] = strip({k: v for k, v in item.items() if k in methods or k == "parameters"})
        if not responses:
            for method in methods:
                for answer in out["paths"][path][method].get("responses", {}).values():
                    answer.pop("schema", None)
    todo, seen = refs(out["paths"]) | refs(out.get("security", [])), set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts, node = pointer(doc, ref)
        node = strip(node)
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = node
        todo |= refs(node) - seen
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for host in OPERATIONS:
        parser.add_argument(f"--{host}", type=Path, help=f"the full {host} document (file, or folder for bitbucket)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for host, operations in OPERATIONS.items():
        source = getattr(args, host)
        if source is None:
            continue
        data = subset(load(source), operations, responses=host not in NO_RESPONSE_SCHEMAS)
        data["paths"].update(DOC_DERIVED.get(host, {}))
        (OUT / f"{host}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        derived = sum(len(item) for item in DOC_DERIVED.get(host, {}).values())
        print(f"{host}: {sum(len(m) for m in operations.values())} operations"
              f"{f' (+{derived} from the REST docs)' if derived else ''} -> {OUT / f'{host}.json'}")


if __name__ == "__main__":
    main()
