"""`mlops-gen ci run`: run buildspec.yml, azure-pipelines.yml or cloudbuild.yaml locally."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import tomllib
import uuid
from pathlib import Path

import click
import yaml
from rich.console import Console
from rich.text import Text

from mlops_gen.azure_expressions import ExprError

from . import pyenv
from .errors import CIUsageError
from .events import EVENTS, Event, Trigger, make_event
from .masking import Masker, secret_values
from .report import FAILED, Reporter, say, write_report
from .runtime import Context
from .sealed import sealed_environ
from .workspace import RUN_MARKER, GitInfo, make_workspace, reap

CI_FILES = {
    "aws": ("buildspec.yml", "buildspec.yaml"),
    "azure": ("azure-pipelines.yml", "azure-pipelines.yaml"),
    "gcp": ("cloudbuild.yaml", "cloudbuild.yml", "cloudbuild.json"),
}
TITLES = {"aws": "CodeBuild", "azure": "Azure Pipelines", "gcp": "Cloud Build"}


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        out[key.strip()] = value
    return out


def find_ci_file(repo: Path, provider: str) -> Path | None:
    for name in CI_FILES[provider]:
        if (repo / name).is_file():
            return repo / name
    return None


@click.group()
def ci() -> None:
    """Run the repository's own CI file locally, offline, with the service's semantics."""


@ci.command("run")
@click.option("--provider", type=click.Choice(sorted(CI_FILES)), help="Which CI file to run (default: every one present).")
@click.option("--repo", type=click.Path(file_okay=False, exists=True, path_type=Path), default=".",
              show_default=True, help="The repository; it is copied, never modified (except .local-ci/).")
@click.option("--file", "ci_file", help="CI file, relative to the repository (default: the service's standard name).")
@click.option("--event", type=click.Choice(EVENTS), default=None,
              help="What starts the build (default: push): the service's variables for it, from the "
                   "triggers the CI file and infra/ declare; an event they do not declare exits 2.")
@click.option("--payload", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="JSON the data or alarm event delivers (default: a bundled fixture per cloud).")
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE",
              help="Variable / substitution override (repeatable); wins over [tool.mlops-gen.ci-run.vars] "
                   "in the repository's pyproject.toml.")
@click.option("--keep-env", "keep_env", multiple=True, metavar="NAME",
              help="Pass this environment variable through although it looks like a credential "
                   "(AWS_*, AZURE_*, GOOGLE_*, *_TOKEN, *_SECRET*, *_API_KEY, *PASSWORD*…); a glob; repeatable.")
@click.option("--allow-cloud", is_flag=True,
              help="Let steps reach real clouds: keep your HOME, credential files and cloud variables "
                   "(by default steps get an empty HOME and every SDK finds no credentials).")
@click.option("--secrets", "secrets_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="YAML/JSON with parameter-store, secrets-manager (aws), variable-groups (azure), "
                   "secret-manager (gcp) values.")
@click.option("--map-image", "image_maps", multiple=True, metavar="IMAGE=ENTRYPOINT",
              help="Run Cloud Build steps using IMAGE on the host; ENTRYPOINT is the image's default "
                   "entrypoint (empty: none).")
@click.option("--no-venv", is_flag=True, help="Use the current Python instead of an isolated environment.")
@click.option("--keep-workspace", is_flag=True, help="Keep the copy the build ran in (its path is in the report).")
@click.option("-v", "--verbose", is_flag=True, help="Print every output line of every step.")
def run(provider, repo, ci_file, event, payload, variables, keep_env, allow_cloud, secrets_file, image_maps, no_venv,
        keep_workspace, verbose) -> None:
    """Run the CI file(s) of a repository locally and report each step.

    Exit status: 0 when every step passed, 1 when one failed, 2 for bad usage or a CI file
    that cannot run locally (the message names what).
    """
    repo = repo.resolve()
    overrides = _pairs(variables, "--var")
    image_map = _pairs(image_maps, "--map-image")
    console = Console(stderr=False, highlight=False)
    try:
        secrets = _load_secrets(secrets_file)
        trigger_event = make_event(event, payload)
        if provider:
            path = repo / ci_file if ci_file else find_ci_file(repo, provider)
            if path is None or not path.is_file():
                raise CIUsageError(f"no {' or '.join(CI_FILES[provider])} in {repo}")
            plan = [(provider, path)]
        else:
            if ci_file:
                raise CIUsageError("--file needs --provider")
            plan = [(p, f) for p in CI_FILES if (f := find_ci_file(repo, p))]
            if not plan:
                raise CIUsageError(f"no CI file in {repo} (looked for "
                                   + ", ".join(n for names in CI_FILES.values() for n in names) + ")")
        defaults = repo_defaults(repo)
        codes = []
        for name, path in plan:
            vars_ = {**defaults.get(name, {}), **overrides}
            codes.append(run_one(name, path, repo, vars_, explicit=set(overrides), event=trigger_event,
                                 explicit_file=bool(ci_file), keep_env=keep_env,
                                 allow_cloud=allow_cloud, secrets=secrets, image_map=image_map, use_venv=not no_venv,
                                 keep_workspace=keep_workspace, verbose=verbose, console=console))
    except (CIUsageError, ExprError) as exc:  # an expression that cannot be evaluated: exit 2
        click.echo(f"mlops-gen ci run: error: {exc}", err=True)
        sys.exit(2)
    sys.exit(max(codes))


def repo_defaults(repo: Path) -> dict[str, dict[str, str]]:
    """provider -> variables from `[tool.mlops-gen.ci-run.vars]` of the repository's pyproject.toml.

    The runner knows the services, not any template: a repository says here what a local run of
    its CI files should set (e.g. its deploy-target switch), as ruff reads its settings there.
    """
    pyproject = repo / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("mlops-gen", {}).get("ci-run", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CIUsageError(f"{pyproject}: not valid TOML: {exc}") from exc
    found = table.get("vars", {})
    where = f"{pyproject}: [tool.mlops-gen.ci-run.vars]"
    if not isinstance(found, dict) or any(p not in CI_FILES or not isinstance(v, dict) for p, v in found.items()):
        raise CIUsageError(f"{where}: expected a table per provider ({', '.join(CI_FILES)}) of NAME = \"value\"")
    return {p: {str(k): str(v) for k, v in values.items()} for p, values in found.items()}


def _load_secrets(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CIUsageError(f"--secrets {path}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CIUsageError(f"--secrets {path}: expected a mapping")
    return data


def resolve_trigger(provider: str, event: Event, workspace: Path, rel: Path, git: GitInfo,
                    explicit_file: bool) -> Trigger:
    """The variables the service sets for `event`, from what the repository declares (exit 2 when
    it declares no such trigger). On Cloud Build the trigger also chooses the build file."""
    from . import azure_template, azure_triggers, cloudbuild_triggers, codebuild_triggers

    if provider == "aws":
        return codebuild_triggers.resolve(event, workspace, str(rel), git)
    if provider == "azure":
        doc = azure_template.load_yaml(workspace / rel)
        return azure_triggers.resolve(event, doc if isinstance(doc, dict) else {}, str(rel), git)
    return cloudbuild_triggers.resolve(event, workspace, str(rel) if explicit_file else None, str(rel), git)


def run_one(provider: str, path: Path, repo: Path, variables: dict[str, str], *, explicit: set[str],
            event: Event | None = None, explicit_file: bool = False, keep_env: tuple[str, ...],
            allow_cloud: bool, secrets: dict, image_map: dict[str, str], use_venv: bool, keep_workspace: bool,
            verbose: bool, console: Console) -> int:
    """Run one CI file; returns the exit status (0 passed, 1 failed; CIUsageError for 2)."""
    from . import azure, cloudbuild, codebuild

    runner = {"aws": codebuild.run, "azure": azure.run, "gcp": cloudbuild.run}[provider]
    out_dir = repo / ".local-ci" / provider
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"mlops-gen-ci-{provider}-"))
    run_id = uuid.uuid4().hex
    started = time.time()
    mask = Masker(secret_values(secrets))
    reporter = Reporter(console, provider, verbose=verbose, mask=mask)
    result: dict = {"result": "failed"}
    trigger = None
    try:
        workspace = make_workspace(repo, tmp / "workspace")
        rel = path.resolve().relative_to(repo)
        git = GitInfo.read(repo)
        trigger = resolve_trigger(provider, event or Event(), workspace, rel, git, explicit_file)
        if trigger.build_file and Path(trigger.build_file) != rel:
            rel = Path(trigger.build_file)
            if not (workspace / rel).is_file():
                raise CIUsageError(f"{trigger.declared_by} runs {rel}, which is not in {repo}")
        env = sealed_environ(tmp / "home", allow_cloud=allow_cloud, keep=keep_env)
        env[RUN_MARKER] = run_id
        python = sys.executable
        setup = time.monotonic()
        with reporter:  # progress (and, without a terminal, heartbeats) from the environment set-up on
            if use_venv:
                with reporter.activity("python environment"):
                    ci_text = (azure.expanded_text(workspace / rel, {**trigger.predefined, **trigger.variables,
                                                                     **variables})
                               if provider == "azure" else (workspace / rel).read_text(errors="replace"))
                    venv = pyenv.prepare(workspace, provider, variables, tmp, reporter.note, ci_text=ci_text)
                env = pyenv.python_env(venv, env)
                python = str(venv / "bin" / "python")
            setup = time.monotonic() - setup
            ctx = Context(provider=provider, repo=repo, workspace=workspace, out_dir=out_dir, env=env,
                          git=git, reporter=reporter, run_id=run_id, variables=variables,
                          secrets=secrets, image_map=image_map, python=python, explicit=explicit, mask=mask,
                          trigger=trigger)
            reporter.note(f"running {rel} in {workspace} (environment ready in {setup:.1f}s)")
            reporter.note(f"event {trigger.event}: {trigger.declared_by}")
            for text in trigger.notes:
                reporter.note(f"event {trigger.event}: {text}")
            if allow_cloud:
                reporter.note("--allow-cloud: steps see your HOME, credential files and cloud variables")
            try:
                result = runner(ctx, workspace / rel)
            finally:
                reap(RUN_MARKER, run_id)
    finally:
        if not keep_workspace:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = [s.name for s in reporter.steps if s.status == FAILED]
    passed = result.get("result") == "succeeded" and not failed
    write_report(out_dir / "report.json", {
        "provider": provider,
        "service": TITLES[provider],
        "file": str(rel),
        "status": "passed" if passed else "failed",
        **result,
        "failed_steps": failed,
        "variables": variables,
        "event": trigger.to_json() if trigger else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration": round(time.time() - started, 3),
        "workspace": str(tmp / "workspace") if keep_workspace else None,
        "python": python,
        "allow_cloud": allow_cloud,
    }, reporter.steps, mask=mask)
    for artifact in out_dir.rglob("*"):  # what the steps wrote, collected as artifacts and reports
        if artifact.is_file() and artifact.stat().st_size < 50_000_000:
            mask.file(artifact)
    reporter.summary(f"{TITLES[provider]} {rel}", "succeeded" if passed else result.get("result", "failed"))
    say(console, Text(f"report: {out_dir / 'report.json'}"))
    return 0 if passed else 1
