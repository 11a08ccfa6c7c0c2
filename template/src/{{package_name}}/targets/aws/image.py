"""serving.mode image: build this repository's serving image, push it to the project's ECR repository,
and refuse it when Amazon ECR's scan finds a CRITICAL vulnerability. buildspec.yml runs

    export MODEL_IMAGE="${MODEL_IMAGE_REPOSITORY:?}:${CODEBUILD_RESOLVED_SOURCE_VERSION:?}"
    python -m <package>.targets.aws.image publish "${MODEL_IMAGE}"

after the tests; `register` then records MODEL_IMAGE with the version, and every environment deploys
the image its version was registered with.

Steps: log docker in to the registry (a token from ecr:GetAuthorizationToken, passed on stdin, never
on the command line); `docker build --target mounted -t IMAGE .` (no model baked in: SageMaker unpacks
the version's model.tar.gz into /opt/ml/model, the image's MODEL_DIR); `docker push IMAGE`; wait for
the scan on push (the image-scan-complete waiter); exit 1 naming the count and the first findings when
any is CRITICAL. The repository's tags are immutable: when the tag already exists (a retried build of
the same commit) nothing is built or pushed, and that image's scan decides.

Exit 0 published, 1 CRITICAL findings or a failed build/push/scan, 2 a bad image reference.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time

import boto3
from botocore.exceptions import ClientError, WaiterError

# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>
IMAGE = re.compile(r"^(?P<registry>(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?)"
                   r"/(?P<repository>[a-z0-9][a-z0-9._/-]*):(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")
BLOCKING = "CRITICAL"
SCAN_WAIT_SECONDS = 1800
SCAN_START_SECONDS = 300


class Refused(Exception):
    """The image cannot be published (exit 1), or the reference is wrong (exit 2 when `bad_input`)."""

    def __init__(self, message: str, bad_input: bool = False) -> None:
        super().__init__(message)
        self.bad_input = bad_input


def parse(image: str) -> dict[str, str]:
    match = IMAGE.match(image)
    if not match:
        raise Refused(f"MODEL_IMAGE: '{image}' is not an ECR image reference "
                      "<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> (MODEL_IMAGE_REPOSITORY is "
                      "the ModelImageRepositoryUri output of infra/aws/pipeline.yaml)", bad_input=True)
    return match.groupdict()


def _docker(*args: str, stdin: str | None = None) -> None:
    run = subprocess.run(["docker", *args], input=stdin, text=True, check=False)
    if run.returncode != 0:
        raise Refused(f"docker {args[0]} failed (exit {run.returncode}); its output is above")


def _exists(ecr, ref: dict) -> bool:
    try:
        ecr.describe_images(registryId=ref["account"], repositoryName=ref["repository"],
                            imageIds=[{"imageTag": ref["tag"]}])
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ImageNotFoundException":
            return False
        raise


def _login(ecr, ref: dict) -> None:
    [data] = ecr.get_authorization_token(registryIds=[ref["account"]])["authorizationData"]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    _docker("login", "--username", user, "--password-stdin", ref["registry"], stdin=password)


def critical_findings(ecr, ref: dict, poll_seconds: float) -> list[str]:
    """Wait for the scan of the image, then its CRITICAL findings ('name (package)'), all pages read."""
    image_id = {"imageTag": ref["tag"]}
    where = {"registryId": ref["account"], "repositoryName": ref["repository"], "imageId": image_id}
    delay = max(int(poll_seconds), 1)
    for _ in range(max(SCAN_START_SECONDS // delay, 1)):  # scan on push starts a moment after the push
        try:
            ecr.describe_image_scan_findings(**where, maxResults=1)
            break
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ScanNotFoundException":
                raise
            time.sleep(poll_seconds)
    try:
        ecr.get_waiter("image_scan_complete").wait(
            **where, WaiterConfig={"Delay": delay, "MaxAttempts": max(SCAN_WAIT_SECONDS // delay, 1)})
    except WaiterError as exc:
        status = (exc.last_response or {}).get("imageScanStatus", {})
        raise Refused(f"the ECR scan of {ref['repository']}:{ref['tag']} did not complete: "
                      f"{status.get('status', 'no status')} {status.get('description', '')}".strip()) from None
    found, count = [], 0
    for page in ecr.get_paginator("describe_image_scan_findings").paginate(**where):
        scan = page.get("imageScanFindings", {})
        count = max(count, int(scan.get("findingSeverityCounts", {}).get(BLOCKING, 0)))
        for finding in scan.get("findings", []):
            if finding.get("severity") == BLOCKING:
                package = {a["key"]: a["value"] for a in finding.get("attributes", [])}.get("package_name", "")
                found.append(f"{finding.get('name')}" + (f" ({package})" if package else ""))
        for finding in scan.get("enhancedFindings", []):
            if finding.get("severity") == BLOCKING:
                found.append(finding.get("title") or finding.get("findingArn", "a finding"))
    return found or (["(counted, not listed)"] * count)


def publish(image: str, poll_seconds: float = 15.0) -> str:
    ref = parse(image)
    ecr = boto3.session.Session(region_name=ref["region"]).client("ecr")
    if _exists(ecr, ref):
        print(f"{image}: already pushed (tags are immutable); checking its scan", file=sys.stderr)
    else:
        _login(ecr, ref)
        _docker("build", "--target", "mounted", "-t", image, ".")
        _docker("push", image)
    critical = critical_findings(ecr, ref, poll_seconds)
    if critical:
        raise Refused(f"{image}: the ECR scan found {len(critical)} {BLOCKING} vulnerabilit"
                      f"{'y' if len(critical) == 1 else 'ies'}: {', '.join(critical[:10])}"
                      f"{' ...' if len(critical) > 10 else ''}; fix the base image or the pinned dependency, "
                      "then push again")
    return image


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "publish":
        print("usage: python -m <package>.targets.aws.image publish IMAGE", file=sys.stderr)
        return 2
    try:
        publish(argv[1], float(os.environ.get("MLOPS_AWS_POLL_SECONDS", "15")))
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if exc.bad_input else 1
    print(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
