"""No retrain storms: a scheduled, new-data or drift-alarm build stands down while another one runs.

Cloud Build has no per-trigger concurrency limit, and a burst of uploaded files (one Pub/Sub message
each) or a flapping alarm would otherwise train and deploy several times at once. This step of
cloudbuild.yaml lists the project's ongoing builds (the Cloud Build REST API, as the build's own
service account) and, when an older retrain of the same environment is still queued or working,
says so and cancels its own build: "skipped: a retrain is already running (build ...)". Of retrains
started together, the oldest goes on. A cancelled build shows as cancelled, not failed: nothing
went wrong. Push and pull-request builds are never held back, and with a target other than gcp (a
local rehearsal with `mlops-gen ci run`) there are no other builds to look at.

    python -m <package>.targets.gcp.retrain_guard --project P --build B --reason R --env E --target T
"""

from __future__ import annotations

import argparse
import sys

RETRAIN = ("schedule", "data", "alarm")
API = "https://cloudbuild.googleapis.com/v1"
ONGOING = 'status="QUEUED" OR status="WORKING"'


def _session():
    """An HTTP session as the build's service account (Application Default Credentials)."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return AuthorizedSession(credentials)


def _json(response) -> dict:
    if response.status_code >= 400:
        raise SystemExit(f"retrain guard: Cloud Build API answered {response.status_code}: {response.text[:500]}")
    return response.json()


def ongoing(session, project: str) -> list[dict]:
    builds, token = [], ""
    while True:
        params = {"filter": ONGOING, "pageSize": 100, **({"pageToken": token} if token else {})}
        page = _json(session.get(f"{API}/projects/{project}/builds", params=params))
        builds += page.get("builds", [])
        token = page.get("nextPageToken", "")
        if not token:
            return builds


def older_retrain(builds: list[dict], own: dict, env: str) -> dict | None:
    """The oldest other ongoing retrain of `env` started before `own` (ties: the smaller id wins)."""
    def key(build: dict) -> tuple[str, str]:
        return build.get("createTime", ""), build["id"]

    rivals = [b for b in builds if b["id"] != own["id"]
              and (b.get("substitutions") or {}).get("_RUN_REASON") in RETRAIN
              and (b.get("substitutions") or {}).get("_ENV") == env and key(b) < key(own)]
    return min(rivals, key=key) if rivals else None


def guard(args: argparse.Namespace, session=None) -> str:
    if args.reason not in RETRAIN:
        return f"retrain guard: a {args.reason} build is never held back"
    if args.target != "gcp":
        return f"retrain guard: target {args.target}: no other builds to look at"
    session = session or _session()
    own = _json(session.get(f"{API}/projects/{args.project}/builds/{args.build}"))
    rival = older_retrain(ongoing(session, args.project), own, args.env)
    if rival is None:
        return f"retrain guard: no other retrain of {args.env} is running; this {args.reason} build goes on"
    reason = rival["substitutions"]["_RUN_REASON"]
    message = (f"skipped: a retrain is already running (build {rival['id']}, started by {reason} at "
               f"{rival.get('createTime', '?')}); cancelling this {args.reason} build {args.build}")
    print(message, flush=True)  # before the cancel: it ends this step too
    _json(session.post(f"{API}/projects/{args.project}/builds/{args.build}:cancel", json={}))
    return message


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="retrain_guard", description=__doc__.splitlines()[0])
    for name in ("project", "build", "reason", "env", "target"):
        parser.add_argument(f"--{name}", required=True)
    said = guard(parser.parse_args(argv))
    if not said.startswith("skipped:"):
        print(said, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
