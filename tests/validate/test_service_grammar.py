"""The service is the judge: everything CodeBuild and Cloud Build document passes, what they accept
but is likely wrong is a warning, and only what they reject is an error."""

from __future__ import annotations

import pytest

BS_FULL = """\
version: 0.2
run-as: root
env:
  shell: bash
  variables:
    STAGE: dev
    RETRIES: 3
  parameter-store:
    DB_USER: /app/db/user
  secrets-manager:
    TOKEN: prod/app:token:AWSCURRENT
  exported-variables:
    - STAGE
  git-credential-helper: yes
proxy:
  upload-artifacts: no
  logs: yes
phases:
  install:
    run-as: root
    on-failure: ABORT
    runtime-versions:
      python: 3.12
      nodejs: 20
    commands:
      - pip install -r requirements.txt
    finally:
      - echo installed
  pre_build:
    on-failure: RETRY-3
    steps:
      - name: Set up Node
        id: node
        uses: actions/setup-node@v3
        with:
          node-version: 20
      - name: Show it
        if: ${{ steps.node.outcome == 'success' }}
        run: node --version
        shell: bash
        env:
          CI: "true"
        working-directory: web
        continue-on-error: false
        timeout-minutes: 5
  build:
    on-failure: RETRY-2-.*timeout.*
    commands:
      - make test
  post_build:
    on-failure: CONTINUE
    commands:
      - echo done
reports:
  pytest:
    files:
      - report.xml
    base-directory: reports
    discard-paths: yes
    file-format: JUNITXML
artifacts:
  files:
    - '**/*'
  name: build-$(date +%Y-%m-%d)
  discard-paths: no
  base-directory: dist
  exclude-paths:
    - '**/*.tmp'
  enable-symlinks: yes
  s3-prefix: builds
  secondary-artifacts:
    docs:
      files: [site/**/*]
      name: docs
      base-directory: site
cache:
  key: pip-$(codebuild-hash-files requirements.txt)
  fallback-keys:
    - pip-
  action: restore
  paths:
    - /root/.cache/pip/**/*
"""

BATCHES = {
    "build-list": "  build-list:\n    - identifier: linux\n      env:\n        compute-type: BUILD_GENERAL1_SMALL\n"
                  "        variables: {A: b}\n      ignore-failure: false\n      buildspec: a.yml\n",
    "build-graph": "  build-graph:\n    - identifier: a\n    - identifier: b\n      depend-on: [a]\n"
                   "      debug-session: true\n",
    "build-matrix": "  build-matrix:\n    static:\n      ignore-failure: false\n    dynamic:\n      env:\n"
                    "        variables:\n          PY: ['3.11', '3.12']\n",
    "build-fanout": "  build-fanout:\n    parallelism: 4\n    ignore-failure: false\n",
}


def test_the_documented_buildspec_grammar_passes(check):
    run = check("buildspec.yml", BS_FULL, "--strict")
    assert run.findings == [] and run.code == 0, run.output


@pytest.mark.parametrize("shell", ["bash", "/bin/sh", "powershell.exe", "cmd.exe"])
def test_every_documented_shell_passes(check, shell):
    run = check("buildspec.yml", f"version: 0.2\nenv:\n  shell: {shell}\nphases:\n  build:\n    commands: [make]\n",
                "--strict")
    assert run.findings == [], run.output


@pytest.mark.parametrize("kind", sorted(BATCHES))
def test_every_batch_kind_passes(check, kind):
    text = "version: 0.2\nenv:\n  shell: bash\nbatch:\n  fast-fail: false\n" + BATCHES[kind] + \
        "phases:\n  build:\n    commands: [make]\n"
    run = check("buildspec.yml", text, "--strict")
    assert run.findings == [], run.output


@pytest.mark.parametrize("value", ["ABORT", "CONTINUE", "RETRY", "RETRY-3", "RETRY-.*throttl.*", "RETRY-2-^Err.*"])
def test_every_on_failure_form_passes(check, value):
    run = check("buildspec.yml", f"version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    on-failure: '{value}'\n"
                "    commands: [make]\n", "--strict")
    assert run.findings == [], run.output


def test_a_phase_of_only_github_actions_steps_passes(check):
    run = check("buildspec.yml", "version: 0.2\nphases:\n  build:\n    steps:\n      - uses: actions/setup-node@v3\n"
                "        with:\n          node-version: 20\n      - run: npm test\n", "--strict")
    assert run.findings == [], run.output


def test_commented_out_cache_paths_is_a_warning(check):
    text = ("version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    commands: [make]\ncache:\n  paths:\n"
            "    # - /root/.m2/**/*\n")
    run = check("buildspec.yml", text)
    assert run.code == 0
    assert [(f["rule"], f["severity"], f["line"]) for f in run.findings] == [("bs-empty-list", "warning", 8)]


def test_unknown_buildspec_key_is_a_warning_and_a_near_miss_an_error(check):
    base = "version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    commands: [make]\nartifacts:\n  files: [a]\n"
    unknown = check("buildspec.yml", base + "  type: zip\n")
    assert unknown.code == 0 and unknown.rules() == {"bs-unknown-key"}
    assert unknown.findings[0]["severity"] == "warning" and "'type'" in unknown.findings[0]["message"]
    typo = check("buildspec.yml", base + "  base-directroy: dist\n")
    assert typo.code == 1 and typo.rules() == {"bs-schema"}
    assert "did you mean 'base-directory'?" in typo.findings[0]["message"]


def test_two_unknown_keys_are_two_findings(check):
    run = check("buildspec.yml", "version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    commands: [make]\n"
                "artifacts:\n  files: [a]\n  type: zip\n  packaging: zip\n")
    assert [(f["rule"], f["line"]) for f in run.findings] == [("bs-unknown-key", 9), ("bs-unknown-key", 10)]


# ---- bs-default-shell: only for a bash feature, never on Windows

BASH_ONLY = [
    ("[[ -f setup.py ]] && pip install .", "[["),
    ("set -euo pipefail", "pipefail"),
    ("source venv/bin/activate", "source"),
    ("if [ -d x ]; then source x/env; fi", "source"),
    ("FILES=(a b c)", "FILES=("),
    ("echo ${FILES[0]}", "${FILES["),
    ("diff <(sort a) <(sort b)", "<("),
    ("mkdir -p build/{lib,bin}", "{lib,bin}"),
    ("for i in {1..3}; do echo $i; done", "{1..3}"),
    ("function deploy { echo hi; }", "function deploy"),
    ('[ "$STAGE" == prod ] && echo prod', "=="),
    ("printf $'a\\tb'", "$'"),
    ("make &> build.log", "&>"),
    ("pushd web", "pushd"),
    ("echo ${VERSION//./-}", "${VERSION//./-}"),
]


def _spec(command: str, env: str = "") -> str:
    quoted = "'" + command.replace("'", "''") + "'"
    return f"version: 0.2\n{env}phases:\n  build:\n    commands:\n      - {quoted}\n"


@pytest.mark.parametrize(("command", "feature"), BASH_ONLY, ids=[c for c, _ in BASH_ONLY])
def test_default_shell_fires_on_bash_features(check, command, feature):
    run = check("buildspec.yml", _spec(command))
    hits = [f for f in run.findings if f["rule"] == "bs-default-shell"]
    assert len(hits) == 1 and hits[0]["severity"] == "warning", run.output
    assert hits[0]["line"] == 5
    assert "phases.build.commands[0]" in hits[0]["message"] and feature in hits[0]["message"]
    assert check("buildspec.yml", _spec(command, "env:\n  shell: bash\n"), "--strict").findings == []


POSIX = [
    "make test", ". venv/bin/activate", "x=$(date)", "echo ${HOME:-/root}", "[ \"$A\" = b ] && echo b",
    "echo '[[ not shell ]] {a,b}'", "jq '{a: .x, b: .y}' in.json", "find . -name '*.pyc' -exec rm {} \\;",
    "bash -c 'set -o pipefail; make | tee log'", "echo $((1 + 2)) 2>&1 >/dev/null",
]


@pytest.mark.parametrize("command", POSIX)
def test_default_shell_is_quiet_for_posix_commands(check, command):
    run = check("buildspec.yml", _spec(command), "--strict")
    assert "bs-default-shell" not in run.rules(), run.output


@pytest.mark.parametrize("env", ["env:\n  shell: powershell.exe\n", "env:\n  shell: cmd.exe\n", ""])
def test_default_shell_never_fires_on_windows(check, env):
    text = (f"version: 0.2\n{env}phases:\n  build:\n    commands:\n      - Write-Host \"building\"\n"
            "      - '$files = @(Get-ChildItem -Path src); if ($env:STAGE -eq \"prod\") {{ echo prod }}'\n"
            "      - '[[ this would be bash ]]'\n")
    run = check("buildspec.yml", text, "--strict")
    assert "bs-default-shell" not in run.rules(), run.output


def test_default_shell_also_checks_an_explicit_bin_sh(check):
    run = check("buildspec.yml", _spec("set -o pipefail", "env:\n  shell: /bin/sh\n"))
    assert [f["rule"] for f in run.findings] == ["bs-default-shell"]
    assert "/bin/sh" in run.findings[0]["message"]


# ---- Cloud Build

GCB_FULL = """\
steps:
  - name: python:3.12
    id: test
    script: |
      #!/usr/bin/env bash
      for f in *.py; do echo "$f"; done
      echo "$_REGION $PROJECT_ID"
    automapSubstitutions: true
    allowFailure: false
    allowExitCodes: [0, 1]
    env: ['A=b']
    secretEnv: [TOKEN, KMS_PASS]
    timeout: 600s
    dir: src
    volumes:
      - name: vol
        path: /vol
  - name: gcr.io/cloud-builders/docker
    waitFor: ['-']
    entrypoint: bash
    args: ['-c', 'cache_file=x; echo ${cache_file} $f $$HOME $_REGION ${_IMAGE} ${_TAG:-latest}']
images: ['europe-docker.pkg.dev/$PROJECT_ID/repo/app']
tags: [a, b]
logsBucket: gs://bucket/logs
serviceAccount: projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com
timeout: 1200s
queueTtl: 3600s
substitutions:
  _REGION: europe-west1
  _IMAGE: app
  _TAG: latest
availableSecrets:
  secretManager:
    - versionName: projects/$PROJECT_ID/secrets/t/versions/latest
      env: TOKEN
  inline:
    - kmsKeyName: projects/p/locations/global/keyRings/r/cryptoKeys/k
      envMap:
        KMS_PASS: Y2lwaGVydGV4dA==
artifacts:
  objects:
    location: gs://bucket/
    paths: ['out/*']
  pythonPackages:
    - repository: https://europe-python.pkg.dev/p/r
      paths: ['dist/*']
  mavenArtifacts:
    - repository: https://europe-maven.pkg.dev/p/r
      path: target/app.jar
      artifactId: app
      groupId: com.example
      version: '1.0'
  npmPackages:
    - repository: https://europe-npm.pkg.dev/p/r
      packagePath: web
  goModules:
    - repositoryName: r
      repositoryLocation: europe-west1
      repositoryProjectId: p
      sourcePath: go
      modulePath: example.com/m
      moduleVersion: v1.0.0
options:
  automapSubstitutions: true
  dynamicSubstitutions: true
  substitutionOption: MUST_MATCH
  logging: CLOUD_LOGGING_ONLY
  defaultLogsBucketBehavior: REGIONAL_USER_OWNED_BUCKET
  pool:
    name: projects/p/locations/europe-west1/workerPools/pool
  machineType: E2_HIGHCPU_8
  diskSizeGb: '100'
  requestedVerifyOption: VERIFIED
  sourceProvenanceHash: [SHA256]
  logStreamingOption: STREAM_ON
  env: ['X=1']
  secretEnv: [TOKEN]
  volumes:
    - name: vol
      path: /vol
"""


def test_the_documented_cloud_build_grammar_passes(check):
    run = check("cloudbuild.yaml", GCB_FULL, "--strict")
    assert run.findings == [] and run.code == 0, run.output


def test_lower_case_shell_variables_and_escapes_are_not_substitutions(check):
    text = ("steps:\n  - name: bash\n    entrypoint: bash\n    args:\n      - -c\n"
            "      - 'for f in *.txt; do cache_file=$f; echo ${cache_file} $$HOME $${PATH} $$1; done'\n")
    run = check("cloudbuild.yaml", text, "--strict")
    assert run.findings == [], run.output


def test_upper_case_shell_variable_in_args_is_still_rejected(check):
    run = check("cloudbuild.yaml", "steps:\n  - name: bash\n    args: [-c, 'echo ${HOME}/x']\n")
    assert run.code == 1 and run.rules() == {"gcb-shell-dollar"}


def test_script_is_not_substituted(check):
    text = "steps:\n  - name: bash\n    script: |\n      echo $HOME ${PATH} $f $$\n"
    assert check("cloudbuild.yaml", text, "--strict").findings == []
    subs = "substitutions:\n  _TARGET: prod\n"
    unmapped = check("cloudbuild.yaml", "steps:\n  - name: bash\n    script: echo ${_TARGET} $PROJECT_ID\n" + subs)
    assert unmapped.code == 0 and unmapped.rules() == {"gcb-script-substitution"}
    assert unmapped.findings[0]["severity"] == "warning" and "automapSubstitutions" in unmapped.findings[0]["message"]
    for mapped in ("    automapSubstitutions: true\n", "    env: ['_TARGET=$_TARGET', 'PROJECT_ID=$PROJECT_ID']\n"):
        run = check("cloudbuild.yaml", "steps:\n  - name: bash\n    script: echo ${_TARGET} $PROJECT_ID\n" + mapped + subs,
                    "--strict")
        assert run.findings == [], run.output
    build_level = check("cloudbuild.yaml", "steps:\n  - name: bash\n    script: echo $_TARGET\n" + subs
                        + "options:\n  automapSubstitutions: true\n", "--strict")
    assert build_level.findings == [], build_level.output
    step_off = check("cloudbuild.yaml", "steps:\n  - name: bash\n    script: echo $_TARGET\n"
                     "    automapSubstitutions: false\n" + subs + "options:\n  automapSubstitutions: true\n")
    assert step_off.rules() == {"gcb-script-substitution"}


def test_wait_for_a_string_is_a_warning(check):
    run = check("cloudbuild.yaml", "steps:\n  - name: a\n    id: first\n  - name: b\n    waitFor: first\n")
    assert run.code == 0 and run.rules() == {"gcb-wait-for-string"}
    bad = check("cloudbuild.yaml", "steps:\n  - name: a\n    id: first\n  - name: b\n    waitFor: frist\n")
    assert {"gcb-wait-for-string", "gcb-wait-for"} == bad.rules() and bad.code == 1


def test_unused_substitution_is_a_warning(check):
    run = check("cloudbuild.yaml", "steps:\n  - name: a\nsubstitutions:\n  _UNUSED: x\n")
    assert run.code == 0 and run.rules() == {"gcb-unused-substitution"}
    assert "triggered builds" in run.findings[0]["message"]


def test_unknown_cloud_build_keys(check):
    deprecated = check("cloudbuild.yaml", "steps:\n  - name: a\noptions:\n  workerPool: projects/p/locations/l/workerPools/w\n")
    assert deprecated.code == 0 and deprecated.rules() == {"gcb-unknown-key"}
    unknown = check("cloudbuild.yaml", "steps:\n  - name: a\n    cache: true\n", "--dialect", "gcp")
    assert unknown.code == 1 and "gcb-unknown-key" not in unknown.rules()
    assert "no such field" in unknown.findings[0]["message"]
    typo = check("cloudbuild.yaml", "steps:\n  - name: a\n    entrypiont: bash\n", "--dialect", "gcp")
    assert typo.code == 1 and "did you mean 'entrypoint'?" in typo.findings[0]["message"]


def test_empty_cloud_build_list_is_a_warning(check):
    run = check("cloudbuild.yaml", "steps:\n  - name: a\n    args:\n    # - b\nimages:\n")
    assert run.code == 0 and run.rules() == {"gcb-empty-list"}
    assert len(run.findings) == 2


def test_kms_ciphertext_must_be_base64(check):
    bad = check("cloudbuild.yaml", "steps:\n  - name: a\n    secretEnv: [T]\nsecrets:\n  - kmsKeyName: k\n"
                "    secretEnv:\n      T: '<ENCRYPTED>'\n")
    assert bad.code == 1 and [(f["rule"], f["line"]) for f in bad.findings] == [("gcb-proto", 7)]
    good = check("cloudbuild.yaml", "steps:\n  - name: a\n    secretEnv: [T]\nsecrets:\n  - kmsKeyName: k\n"
                 "    secretEnv:\n      T: CiQAkZ6o+vA/Bq0=\n", "--strict")
    assert good.findings == [], good.output


def test_a_build_whose_steps_are_all_commented_out_is_rejected(check):
    run = check("cloudbuild.yaml", "steps:\n  # - name: a\n", "--dialect", "gcp")
    assert run.code == 1 and "gcb-schema" in run.rules()
