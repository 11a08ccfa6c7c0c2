"""`mlops-gen fleet` against Git hosts: discovery through the API, push with a lease, one update
request per repository. The hosts are a local server that checks every request against their
published API descriptions (tests/fleet/hostapi); repositories are local bare repositories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlops_gen import __version__
from mlops_gen.fleet.command import fleet as fleet_cli
from tests.fleet.helpers import commit_all, git
from tests.fleet.hostapi.fleet import branches, protect, publish, seed, template_with_v3
from tests.fleet.hostapi.openapi import Spec, SpecViolation
from tests.fleet.hostapi.server import ApiServer, FakeRepo, World

VARIABLES = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN", "azure": "AZURE_DEVOPS_EXT_PAT",
             "bitbucket": "BITBUCKET_TOKEN"}
OWNERS = {"github": "acme", "gitlab": "acme/platform", "azure": "acme/ml", "bitbucket": "acme"}
UPDATABLE = ["pristine", "conflicted"]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("hosted")
    tpl = template_with_v3(root)
    return tpl, seed(root, tpl)


class Run:
    """One hosted fleet behind a running API server, and the CLI pointed at it."""

    def __init__(self, tmp: Path, seeds: tuple[Path, dict[str, Path]], host: str, names: list[str] | None = None
                 ) -> None:
        self.tmp, self.host, self.template = tmp, host, str(seeds[0])
        seeds = seeds[1]
        self.world = World()
        self.repos = publish(self.world, host, OWNERS[host], seeds, tmp / "remote", names)
        self.server = ApiServer(self.world).__enter__()

    def fleet(self, verb: str, *extra: str, token: str | None = "valid", template: bool = True
              ) -> tuple[int, dict | None, str]:
        """The CLI on this fleet (only repositories of the fixture template unless `template=False`)."""
        report = self.tmp / f"{verb}.json"
        report.unlink(missing_ok=True)
        value = self.world.tokens[self.host] if token == "valid" else token
        result = CliRunner().invoke(fleet_cli, [
            verb, f"{self.host}:{OWNERS[self.host]}", "--api-url", self.server.api_url(self.host),
            "--cache-dir", str(self.tmp / "cache"), "--report", str(report), "-j", "1",
            *(["--template", self.template] if template else []), *extra],
            env={VARIABLES[self.host]: value}, catch_exceptions=False)
        data = json.loads(report.read_text()) if report.exists() else None
        return result.exit_code, data, result.output

    def requests(self, name: str) -> list:
        return self.world.requests[self.repos[name].id]

    def close(self) -> None:
        self.server.__exit__()
        assert self.world.violations == [], self.world.violations


@pytest.fixture
def github(tmp_path: Path, seeds: tuple) -> Run:
    run = Run(tmp_path, seeds, "github")
    yield run
    run.close()


def by_name(report: dict) -> dict[str, dict]:
    return {r["remote"].rsplit("/", 1)[-1]: r for r in report["repos"]}


def test_open_then_rerun_then_supersede(github: Run) -> None:
    code, report, output = github.fleet("update", "--to", "v2.0.0", "--open-pr")
    repos = by_name(report)
    assert code == 0, output
    assert set(repos) == {"pristine", "conflicted", "current"}          # filtered by the API: has answers
    assert repos["current"]["request_state"] == "skipped" and "template-update/v2.0.0" not in branches(
        github.repos["current"])                                        # empty update: no branch, no request
    for name in UPDATABLE:
        assert repos[name]["request_state"] == "opened"
        [pr] = github.requests(name)
        assert pr.title == "Update template to v2.0.0" and pr.base == "main"
        assert pr.branch in branches(github.repos[name]) and repos[name]["request_url"].endswith(f"/pull/{pr.number}")
        assert "template-update" in pr.labels and "docs/guide.md" in pr.body and "old.txt" in pr.body
    conflicted = github.requests("conflicted")[0]
    assert conflicted.draft and "template-conflicts" in conflicted.labels
    assert conflicted.body.startswith("**Conflicts to resolve**") and "`src/beta/main.py`" in conflicted.body.split(
        "\n\n")[0]
    assert not github.requests("pristine")[0].draft
    assert github.world.requests_made("github") / 3 <= 5              # per repository, listing included

    code, report, _ = github.fleet("update", "--to", "v2.0.0", "--open-pr")
    assert code == 0 and {by_name(report)[n]["request_state"] for n in UPDATABLE} == {"unchanged"}
    assert all(len(github.requests(n)) == 1 for n in UPDATABLE)        # re-run: no second request

    code, report, output = github.fleet("update", "--to", "v3.0.0", "--open-pr")
    repos = by_name(report)
    assert code == 0, output
    for name in UPDATABLE:
        old, new = github.requests(name)
        assert repos[name]["request_state"] == "superseded" and repos[name]["superseded"] == [
            f"https://github.example/acme/{name}/pull/{old.number}"]
        assert old.state == "closed" and new.state == "open" and repos[name]["request_url"] in old.comments[0]
    # v3 changes nothing in the repositories but the answers file: still proposed
    assert repos["current"]["request_state"] == "opened"
    assert "_commit: v3.0.0" in github.repos["current"].show("template-update/v3.0.0", ".copier-answers.yml")


def test_plan_pushes_and_opens_nothing(github: Run) -> None:
    before = {n: branches(r) for n, r in github.repos.items()}
    code, report, _ = github.fleet("plan", "--to", "v2.0.0")
    assert code == 0 and by_name(report)["conflicted"]["units"][0]["conflicts"] == ["src/beta/main.py"]
    assert {n: branches(r) for n, r in github.repos.items()} == before
    assert {method for _, method, _, _ in github.world.log} == {"GET"}


def test_refused_token_or_none_stops_before_anything_is_pushed(github: Run) -> None:
    code, report, output = github.fleet("update", "--open-pr", token=None)
    assert code == 2 and report is None and output.strip().splitlines() == [
        "error: github:acme: no token: set GITHUB_TOKEN"]
    code, report, output = github.fleet("update", "--open-pr", token="wrong")
    assert code == 2 and report is None
    assert output.strip().splitlines() == ["error: github:acme refused the token in GITHUB_TOKEN (HTTP 401)"]
    assert all(list(branches(r)) == ["main"] for r in github.repos.values())


def test_rate_limit_is_waited_out(github: Run) -> None:
    github.world.throttle["github"] = 2
    code, report, _ = github.fleet("update", "--to", "v2.0.0", "--open-pr")
    assert code == 0 and {by_name(report)[n]["request_state"] for n in UPDATABLE} == {"opened"}
    assert [status for *_, status in github.world.log[:3]] == [403, 403, 200]


def test_one_repository_failing_does_not_stop_the_others(github: Run) -> None:
    protect(github.repos["conflicted"])
    code, report, output = github.fleet("update", "--to", "v2.0.0", "--open-pr")
    repos = by_name(report)
    assert code == 1
    assert repos["conflicted"]["status"] == "failed" and repos["conflicted"]["request_state"] == "failed"
    assert "Protected branch update failed" in repos["conflicted"]["reason"]
    assert github.requests("conflicted") == [] and list(branches(github.repos["conflicted"])) == ["main"]
    assert repos["pristine"]["request_state"] == "opened"


def test_a_branch_someone_else_moved_is_not_overwritten(github: Run, tmp_path: Path) -> None:
    github.fleet("update", "--to", "v2.0.0", "--push")
    assert github.requests("pristine") == []                           # --push alone opens nothing
    repo = github.repos["pristine"]
    work = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", "-b", "template-update/v2.0.0", str(repo.bare), str(work))
    (work / "fix.txt").write_text("resolved by hand\n")
    commit_all(work, "my fix")
    git(work, "push", "-q", "origin", "HEAD")
    theirs = branches(repo)["template-update/v2.0.0"]
    code, report, _ = github.fleet("update", "--to", "v2.0.0", "--push")
    assert code == 1 and "not overwritten" in by_name(report)["pristine"]["reason"]
    assert branches(repo)["template-update/v2.0.0"] == theirs


def test_status(github: Run) -> None:
    github.fleet("update", "--to", "v2.0.0", "--open-pr")
    code, _, output = github.fleet("status")
    report = json.loads((github.tmp / "status.json").read_text())
    rows = {r["repository"].rsplit("/", 1)[-1]: r for r in report["repos"]}
    assert code == 0
    assert (rows["pristine"]["version"], rows["pristine"]["latest"], rows["pristine"]["behind"]) == ("v1.0.0", "3.0.0", 2)
    assert rows["current"]["behind"] == 1 and rows["current"]["request"] == ""
    assert rows["conflicted"]["request_state"] == "draft" and rows["pristine"]["request_state"] == "open"
    assert rows["conflicted"]["drift"] == "drifted" and rows["conflicted"]["drifted"] == ["src/beta/main.py"]
    assert "github.example/acme/pristine/pull/" in output


def test_token_is_never_written_or_printed(github: Run) -> None:
    token = github.world.tokens["github"]
    outputs = [github.fleet(verb, *extra)[2] for verb, *extra in
               [("plan",), ("update", "--to", "v2.0.0", "--open-pr"), ("status",), ("drift",)]]
    assert not any(token in text for text in outputs)
    written = [p for p in [*github.tmp.rglob("*.json"), *(github.tmp / "cache").rglob("*"),
                           *(github.tmp / "remote").rglob("*")] if p.is_file()]
    assert len(written) > 50
    assert not [p for p in written if token.encode() in p.read_bytes()]


def test_gitlab_open_rerun_supersede_and_tokens(tmp_path: Path, seeds: tuple) -> None:
    """GitLab: requests checked against its OpenAPI document (and its REST docs where the document
    has no operation: group projects, notes); a group path with a slash is URL-encoded."""
    run = Run(tmp_path, seeds, "gitlab", names=["pristine", "conflicted", "current", "no-answers"])
    try:
        code, report, output = run.fleet("update", "--to", "v2.0.0", "--open-pr")
        repos = by_name(report)
        assert code == 0, output
        assert set(repos) == {"pristine", "conflicted", "current"}
        assert repos["current"]["request_state"] == "skipped" and run.requests("current") == []
        assert "template-update/v2.0.0" not in branches(run.repos["current"])     # empty update: nothing pushed
        for name in UPDATABLE:
            [mr] = run.requests(name)
            assert repos[name]["request_state"] == "opened" and mr.base == "main"
            assert repos[name]["request_url"] == f"https://gitlab.example/acme/platform/{name}/-/merge_requests/{mr.number}"
            assert "template-update" in mr.labels and "docs/guide.md" in mr.body
        conflicted, pristine = run.requests("conflicted")[0], run.requests("pristine")[0]
        assert conflicted.draft and conflicted.title == "Draft: Update template to v2.0.0"
        assert conflicted.labels == ["template-update", "template-conflicts"]
        assert not pristine.draft and pristine.title == "Update template to v2.0.0"

        code, report, _ = run.fleet("update", "--to", "v2.0.0", "--open-pr")
        assert code == 0 and {by_name(report)[n]["request_state"] for n in UPDATABLE} == {"unchanged"}
        assert all(len(run.requests(n)) == 1 for n in UPDATABLE)                 # re-run: no second MR

        code, report, output = run.fleet("update", "--to", "v3.0.0", "--open-pr")
        repos = by_name(report)
        assert code == 0, output
        for name in UPDATABLE:
            old, new = run.requests(name)
            assert repos[name]["request_state"] == "superseded" and (old.state, new.state) == ("closed", "open")
            assert repos[name]["superseded"] == [
                f"https://gitlab.example/acme/platform/{name}/-/merge_requests/{old.number}"]
            assert old.comments == [f"Superseded by {repos[name]['request_url']} (update template to v3.0.0)."]
        assert repos["current"]["request_state"] == "opened"
        methods = {(method, path.split("/")[-1]) for host, method, path, _ in run.world.log if host == "gitlab"}
        assert {("GET", "projects"), ("GET", "raw"), ("GET", "merge_requests"), ("POST", "merge_requests"),
                ("POST", "notes")} <= methods and any(m == "PUT" for m, _ in methods)
        refused = [(method, path, status) for _, method, path, status in run.world.log if status >= 400]
        assert len(refused) == 3 and all(path.endswith("/raw") and status == 404 for _, path, status in refused)

        log = len(run.world.log)
        code, report, output = run.fleet("update", "--to", "v3.0.0", "--open-pr", token=None)
        assert code == 2 and report is None
        assert output.strip().splitlines() == ["error: gitlab:acme/platform: no token: set GITLAB_TOKEN"]
        assert len(run.world.log) == log                                        # nothing asked without a token
        code, _, output = run.fleet("update", "--to", "v3.0.0", "--open-pr", token="wrong")
        assert code == 2 and output.strip().splitlines() == [
            "error: gitlab:acme/platform refused the token in GITLAB_TOKEN (HTTP 401)"]
    finally:
        run.close()                                                             # every request passed the spec


def test_gitlab_lists_every_page(tmp_path: Path, seeds: tuple) -> None:
    run = Run(tmp_path, seeds, "gitlab", names=["no-answers"])
    try:
        plain = run.repos["no-answers"].bare
        for number in range(100):                                   # more than one page of 100
            run.world.add("gitlab", OWNERS["gitlab"], FakeRepo(owner=OWNERS["gitlab"], name=f"plain-{number}", bare=plain))
        code, _, output = run.fleet("plan", "--to", "v2.0.0")
        assert code == 0 and "(101 listed have no answers file naming it)" in output
        assert len([path for _, _, path, _ in run.world.log if path.endswith("/projects")]) == 2   # page 2 by Link
    finally:
        run.close()


@pytest.mark.parametrize("host", ["azure", "bitbucket"])
def test_other_hosts_open_update_and_supersede(host: str, tmp_path: Path, seeds: tuple) -> None:
    run = Run(tmp_path, seeds, host, names=["pristine", "conflicted", "no-answers"])
    try:
        code, report, output = run.fleet("update", "--to", "v2.0.0", "--open-pr")
        repos = by_name(report)
        assert code == 0, output
        assert set(repos) == {"pristine", "conflicted"}
        assert {repos[n]["request_state"] for n in UPDATABLE} == {"opened"}
        assert run.requests("conflicted")[0].draft and not run.requests("pristine")[0].draft
        code, report, _ = run.fleet("update", "--to", "v2.0.0", "--open-pr")
        assert {by_name(report)[n]["request_state"] for n in UPDATABLE} == {"unchanged"}
        code, report, _ = run.fleet("update", "--to", "v3.0.0", "--open-pr")
        assert {by_name(report)[n]["request_state"] for n in UPDATABLE} == {"superseded"}
        assert [pr.state for pr in run.requests("pristine")] == ["closed", "open"]
        run.world.throttle[host] = 1
        code, _, output = run.fleet("update", "--to", "v3.0.0", "--open-pr", token="wrong")
        assert code == 2 and VARIABLES[host] in output
    finally:
        run.close()


def test_template_option_keeps_only_its_repositories(github: Run) -> None:
    code, report, _ = github.fleet("plan", "--to", "v2.0.0", template=False)
    assert code == 1 and by_name(report)["other-template"]["status"] == "skipped"
    code, report, output = github.fleet("plan", "--to", "v2.0.0", "--template", github.template + "/",
                                        template=False)
    assert code == 0 and set(by_name(report)) == {"pristine", "conflicted", "current"}
    assert "2 listed repositories have no answers file naming the template" in output


def test_the_validator_refuses_what_the_document_does_not_allow() -> None:
    github, azure, bitbucket, gitlab = Spec("github"), Spec("azure"), Spec("bitbucket"), Spec("gitlab")
    refused = [
        (github, "GET", "/orgs/acme/repos", {"perpage": ["100"]}, b""),                      # unknown parameter
        (github, "GET", "/orgs/acme/repos", {"per_page": ["many"]}, b""),                    # wrong type
        (github, "POST", "/repos/a/b/pulls", {}, b'{"title": "x", "head": "b"}'),             # base missing
        (github, "DELETE", "/repos/a/b/pulls/1", {}, b""),                                    # no such operation
        (azure, "GET", "/o/p/_apis/git/repositories", {}, b""),                               # api-version missing
        (azure, "PATCH", "/o/p/_apis/git/repositories/r/pullrequests/1", {"api-version": ["7.1"]},
         b'{"status": "closed"}'),                                                            # not a status
        (bitbucket, "GET", "/2.0/repositories/acme", {"pagelen": ["100"]}, b""),              # not documented here
        (gitlab, "POST", "/api/v4/projects/1/merge_requests", {},
         b'{"title": "x", "source_branch": "b", "target_branch": "main", "labels": "a,b"}'),   # labels: an array
        (gitlab, "POST", "/api/v4/projects/1/merge_requests", {}, b'{"title": "x", "source_branch": "b"}'),
        (gitlab, "PUT", "/api/v4/projects/1/merge_requests/2", {}, b'{"state_event": "closed"}'),  # close|reopen
        (gitlab, "PUT", "/api/v4/projects/1/merge_requests/x", {}, b'{"title": "x"}'),        # iid: an integer
        (gitlab, "GET", "/api/v4/projects/1/merge_requests", {"state": ["open"]}, b""),       # opened, not open
        (gitlab, "GET", "/api/v4/groups/acme/projects", {"recursive": ["true"]}, b""),        # (from the REST docs)
        (gitlab, "POST", "/api/v4/projects/1/merge_requests/2/notes", {}, b'{"note": "x"}'),  # body missing
    ]
    for spec, method, path, query, body in refused:
        with pytest.raises(SpecViolation):
            spec.check_request(method, path, query, "application/json", body)


def test_scheduled_job_examples() -> None:
    """The documented CI jobs run the released tool; the Azure one passes our own validator."""
    examples = Path(__file__).resolve().parents[2] / "generator/mlops_gen/fleet/examples"
    for example in examples.glob("*.yml"):
        text = example.read_text()
        assert yaml.safe_load(text) and f"mlops-gen=={__version__}" in text
        assert "fleet update" in text and "--push --open-pr" in text
    proc = subprocess.run([sys.executable, "-m", "mlops_gen", "validate", "--strict",
                           str(examples / "azure-pipelines-template-update.yml")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
