"""Azure Pipelines semantics on small crafted pipelines, and the expression parser."""

from __future__ import annotations

import pytest

from mlops_gen.azure_expressions import Evaluator, ExprError

from .conftest import make_repo

pytestmark = pytest.mark.xdist_group("localci")


def test_setvariable_reaches_later_steps_and_failed_runs_only_after_a_failure(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": """
        steps:
          - bash: echo "##vso[task.setvariable variable=fromStep]value one"
            displayName: set
          - script: |
              test "$FROMSTEP" = "value one"
              test "$(fromStep)" = "value one"
            displayName: read
          - script: echo not after success
            displayName: early-failed
            condition: failed()
          - script: exit 5
            displayName: boom
          - script: echo skipped
            displayName: after-boom
          - script: echo handler
            displayName: on-failure
            condition: failed()
          - script: echo always
            displayName: cleanup
            condition: always()
        """})
    r = run_ci(repo, "azure")
    assert r.code == 1
    assert r.status("read") == "passed"
    assert r.status("early-failed") == "skipped"
    assert r.status("boom") == "failed"
    assert r.status("after-boom") == "skipped"
    assert r.status("on-failure") == "passed"
    assert r.status("cleanup") == "passed"


def test_variables_macros_env_mapping_and_predefined(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": """
        variables:
          - name: deployTarget
            value: azure
          - name: greeting
            value: hi-$(deployTarget)
        jobs:
          - job: J
            variables:
              job.level: yes
            steps:
              - script: |
                  set -eu
                  test "$(deployTarget)" = local && test "$DEPLOYTARGET" = local
                  test "$GREETING" = hi-local
                  test "$JOB_LEVEL" = yes
                  test "$BUILD_SOURCEBRANCH" = refs/heads/main && test "$(Build.SourceBranchName)" = main
                  test "$BUILD_SOURCEVERSION" = "$(git rev-parse HEAD)"
                  test "$SYSTEM_DEFAULTWORKINGDIRECTORY" = "$PWD"
                  test "$TF_BUILD" = True
                  test "$MY_ENV" = "mapped-local"
                  echo '$(undefined.macro) stays'
                env:
                  MY_ENV: mapped-$(deployTarget)
        """})
    r = run_ci(repo, "azure", "--var", "deployTarget=local")
    assert r.code == 0, r.output
    assert "$(undefined.macro) stays" in r.log("script")


def test_stages_in_dependency_order_with_conditions(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": """
        stages:
          - stage: Deploy
            dependsOn: [Test]
            jobs:
              - job: D
                steps: [{script: echo deploy, displayName: deploy}]
          - stage: Build
            dependsOn: []
            jobs:
              - job: B
                steps: [{script: echo build, displayName: build}]
          - stage: Test
            dependsOn: Build
            jobs:
              - job: T
                steps: [{script: exit 1, displayName: test}]
          - stage: Notify
            dependsOn: Test
            condition: failed()
            jobs:
              - job: N
                steps: [{script: echo notify, displayName: notify}]
        """})
    r = run_ci(repo, "azure")
    assert r.code == 1
    names = [s["name"] for s in r.report["steps"]]
    assert names.index("Build/B/build") < names.index("Test/T/test") < names.index("Deploy/D/deploy")
    assert r.status("deploy") == "skipped"
    assert r.status("notify") == "passed"
    assert r.report["stages"]["Deploy"]["result"] == "Skipped"


def test_template_expressions_parameters_and_output_variables(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {
        "azure-pipelines.yml": """
            parameters:
              - name: runSmoke
                type: boolean
                default: false
              - name: envs
                type: object
                default: [dev, prod]
            variables:
              deployTarget: aws
            jobs:
              - job: A
                steps:
                  - template: steps.yml
                    parameters:
                      who: ${{ variables.deployTarget }}
                  - bash: echo "##vso[task.setvariable variable=model;isOutput=true]m-42"
                    name: reg
                  - ${{ each env in parameters.envs }}:
                    - script: echo deploy ${{ env }}
                      displayName: deploy-${{ env }}
                  - ${{ if parameters.runSmoke }}:
                    - script: echo smoke
                      displayName: smoke
                  - ${{ else }}:
                    - script: echo no smoke
                      displayName: no-smoke
              - job: B
                dependsOn: A
                variables:
                  fromA: $[ dependencies.A.outputs['reg.model'] ]
                steps:
                  - script: test "$(fromA)" = m-42
                    displayName: read-output
            """,
        "steps.yml": """
            parameters:
              - name: who
                type: string
            steps:
              - script: test "${{ parameters.who }}" = local
                displayName: templated
            """,
    })
    r = run_ci(repo, "azure", "--var", "deployTarget=local")
    assert r.code == 0, r.output
    assert r.status("templated") == "passed"
    assert r.status("deploy-dev") == "passed" and r.status("deploy-prod") == "passed"
    assert r.status("no-smoke") == "passed"
    assert r.status("read-output") == "passed"
    r = run_ci(repo, "azure", "--var", "runSmoke=true", "--var", "deployTarget=local")
    assert r.code == 0 and r.status("A/smoke") == "passed"


def test_deployment_job_run_once_and_known_tasks(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": """
        stages:
          - stage: S
            jobs:
              - job: Test
                steps:
                  - task: UsePythonVersion@0
                    inputs: {versionSpec: '3.x'}
                  - task: Cache@2
                    inputs: {key: 'pip | x', path: /tmp/none}
                  - script: |
                      mkdir -p out && printf '<testsuite tests="1" failures="0"><testcase name="t"/></testsuite>' > out/TEST-a.xml
                  - task: PublishTestResults@2
                    inputs:
                      testResultsFiles: '**/TEST-*.xml'
                      failTaskOnFailedTests: true
              - deployment: Deploy
                dependsOn: Test
                environment: staging
                strategy:
                  runOnce:
                    deploy:
                      steps:
                        - task: AzureCLI@2
                          displayName: deploy
                          inputs:
                            azureSubscription: conn
                            scriptType: bash
                            scriptLocation: inlineScript
                            inlineScript: test "$(Environment.Name)" = staging && exit 3
                    on:
                      failure:
                        steps: [{script: echo rollback, displayName: rollback}]
                      success:
                        steps: [{script: echo done, displayName: done}]
        """})
    r = run_ci(repo, "azure")
    assert r.code == 1
    assert r.status("PublishTestResults") == "passed"
    assert (repo / ".local-ci/azure/test-results/out/TEST-a.xml").exists()
    assert r.status("deploy") == "failed"
    assert r.step("deploy")["exit_code"] == 3
    assert r.status("rollback") == "passed" and r.status("done") == "skipped"


def test_unknown_task_is_a_clear_error(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": """
        steps:
          - script: echo fine
          - task: Docker@2
            inputs: {command: build}
        """})
    r = run_ci(repo, "azure")
    assert r.code == 2
    assert "Docker@2" in r.output


@pytest.mark.parametrize("expr, expected", [
    ("and(succeeded(), eq(variables['Build.SourceBranch'], 'refs/heads/MAIN'))", True),
    ("or(failed(), ne(variables.x, 'False'))", False),
    ("not(variables.x)", False),  # the string 'False' is true
    ("eq(parameters.n, '3')", True),
    ("in(variables.x, 'a', 'false')", True),
    ("and(eq(1, 1), or(eq('a''b', 'A''B'), failed()))", True),
    ("gt(parameters.n, 2)", True),
    ("format('{0}-{1}', parameters.n, parameters.envs[1])", "3-b"),
    ("coalesce(variables.missing, '', 'fallback')", "fallback"),
    ("contains(parameters.envs, 'B')", True),
    ("startsWith(variables['build.sourcebranch'], 'refs/heads/')", True),
])
def test_expressions(expr, expected):
    ev = Evaluator({"variables": {"Build.SourceBranch": "refs/heads/main", "x": "False"},
                    "parameters": {"n": 3, "envs": ["a", "b"]}},
                   {"succeeded": lambda *a: True, "failed": lambda *a: False})
    assert ev.evaluate(expr) == expected


@pytest.mark.parametrize("expr", ["eq(1", "eq(1,,2)", "nosuch(1)", "'open", "variables[", "unknownRoot.x"])
def test_bad_expressions_raise(expr):
    with pytest.raises(ExprError):
        Evaluator({"variables": {}}).evaluate(expr)


def test_a_relative_download_path_is_in_the_job_working_directory(tmp_path, run_ci, monkeypatch):
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": """
        jobs:
          - job: make
            steps:
              - script: mkdir -p out && echo built > out/x.txt
              - task: PublishPipelineArtifact@1
                inputs: {targetPath: out, artifact: built}
          - job: use
            dependsOn: make
            steps:
              - script: rm -rf out got
              - task: DownloadPipelineArtifact@2
                inputs: {buildType: current, artifactName: built, targetPath: got}
              - script: test "$(cat got/x.txt)" = built
                displayName: read
        """})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where `mlops-gen ci run` was started: never written to
    r = run_ci(repo, "azure")
    assert r.code == 0, r.output
    assert r.status("read") == "passed"
    assert list(elsewhere.iterdir()) == []


def test_extras_installed_in_a_steps_template_reach_the_environment(tmp_path):
    from mlops_gen.localci import azure, pyenv

    repo = make_repo(tmp_path / "r", {
        "azure-pipelines.yml": """
            variables:
              target: aws
            steps:
              - template: ci/setup.yml
                parameters:
                  extras: dev,gcp,$(target)
            """,
        "ci/setup.yml": """
            parameters:
              - name: extras
                type: string
            steps:
              - script: python -m pip install -e ".[${{ parameters.extras }}]"
            """,
    }, commit=False)
    text = azure.expanded_text(repo / "azure-pipelines.yml", {"target": "azure"})
    assert pyenv.ci_extras(text, {"target": "azure"}) == ["dev", "gcp", "azure"]
