"""serving: image. The build's gate on the vulnerability scan of this commit's image.

Artifact Registry scans every pushed image on its own (Artifact Analysis on-push scanning,
containerscanning.googleapis.com, enabled by infra/gcp/setup.sh); the results are occurrences in the
Container Analysis API, attached to the image's digest. This step of cloudbuild.yaml waits until the
scan of the digest the image step pushed (artifacts/image.txt) has finished, then fails the build
(exit 1) on a CRITICAL vulnerability that has a fix: nothing is trained or registered with that image.
Other findings are listed, not fatal (a CRITICAL without a fix cannot be acted on by a rebuild). A scan
that failed, does not support the image or never starts (on-push scanning not enabled) fails the build
too: an unscanned image is not let through.

    python -m <package>.targets.gcp.image_scan --digest-file artifacts/image.txt --target T

With a target other than gcp, or no digest file (the image step built nothing: a pull request, a batch),
there is nothing to check.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

API = "https://containeranalysis.googleapis.com/v1"
DONE = {"FINISHED_SUCCESS", "COMPLETE"}
BROKEN = {"FINISHED_FAILED", "FINISHED_UNSUPPORTED"}


def _session():
    """An HTTP session as the build's service account (Application Default Credentials)."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return AuthorizedSession(credentials)


def occurrences(session, project: str, kind: str, resource: str) -> list[dict]:
    """Every occurrence of `kind` on the image `resource` (all pages)."""
    found, token = [], ""
    while True:
        params = {"filter": f'kind="{kind}" AND resourceUrl="{resource}"', "pageSize": 500}
        if token:
            params["pageToken"] = token
        response = session.get(f"{API}/projects/{project}/occurrences", params=params, timeout=60)
        if response.status_code >= 400:
            raise SystemExit(f"image scan: Container Analysis API answered {response.status_code}: "
                             f"{response.text[:500]}")
        body = response.json()
        found += body.get("occurrences", [])
        token = body.get("nextPageToken", "")
        if not token:
            return found


def wait_for_scan(session, project: str, resource: str, timeout_s: float, poll_s: float = 20.0) -> str:
    """The finished scan's status; exits 1 when it broke or did not finish within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    status = "not started"
    while True:
        discovered = occurrences(session, project, "DISCOVERY", resource)
        if discovered:
            status = discovered[0].get("discovery", {}).get("analysisStatus", "PENDING")
        if status in DONE:
            return status
        if status in BROKEN:
            raise SystemExit(f"image scan: Artifact Analysis could not scan {resource}: {status}")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"image scan: the scan of {resource} is {status} after {timeout_s:.0f}s; is on-push scanning "
                "enabled (gcloud services enable containerscanning.googleapis.com, infra/gcp/setup.sh)?")
        time.sleep(poll_s)


def verdict(found: list[dict]) -> tuple[list[str], Counter]:
    """(the findings that fail the build: CRITICAL with a fix, one line each; the count per severity)."""
    counts, blocking = Counter(), []
    for occurrence in found:
        vulnerability = occurrence.get("vulnerability", {})
        severity = vulnerability.get("effectiveSeverity") or vulnerability.get("severity") or "UNSPECIFIED"
        counts[severity] += 1
        if severity == "CRITICAL" and vulnerability.get("fixAvailable"):
            packages = sorted({i.get("affectedPackage", "?") for i in vulnerability.get("packageIssue", [])})
            blocking.append(f"{vulnerability.get('shortDescription') or occurrence.get('noteName', '?')} "
                            f"in {', '.join(packages)}")
    return sorted(blocking), counts


def check(session, digest_ref: str, timeout_s: float = 900, poll_s: float = 20.0) -> int:
    """0 when the image may be used, 1 when a fixable CRITICAL vulnerability was found."""
    if "@sha256:" not in digest_ref or "-docker.pkg.dev/" not in digest_ref.split("@")[0]:
        raise SystemExit(f"image scan: '{digest_ref}' is not an Artifact Registry image digest "
                         "(REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE@sha256:...)")
    project = digest_ref.split("/")[1]
    resource = f"https://{digest_ref}"
    wait_for_scan(session, project, resource, timeout_s, poll_s)
    blocking, counts = verdict(occurrences(session, project, "VULNERABILITY", resource))
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no vulnerabilities"
    print(f"image scan of {digest_ref}: {summary}")
    if blocking:
        print(f"image scan: {len(blocking)} CRITICAL vulnerabilities with a fix; rebuild on a patched base "
              "image or upgrade the packages (Dockerfile PYTHON_IMAGE, pyproject.toml):", file=sys.stderr)
        for line in blocking:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--digest-file", type=Path, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--timeout-minutes", type=float, default=15)
    args = parser.parse_args(argv)
    if args.target != "gcp" or not args.digest_file.is_file():
        print(f"image scan: nothing to check (target {args.target}, no image built in this build)")
        return 0
    return check(_session(), args.digest_file.read_text().strip(), args.timeout_minutes * 60)


if __name__ == "__main__":
    sys.exit(main())
