"""Azure Pipelines template syntax read the way Azure expands it: no finding for what Azure accepts."""

from __future__ import annotations

AZ = "azure-pipelines.yml"


def _errors(run) -> list[dict]:
    return [f for f in run.findings if f["severity"] == "error"]


def test_template_expression_inside_a_quoted_literal_in_a_condition(check):
    run = check(AZ, """\
parameters:
- name: sha
  type: string
  default: use default
trigger: none
steps:
- script: echo hi
  condition: eq('use default', '${{ parameters.sha }}')
- script: echo hi
  condition: and(succeeded(), ne('${{ parameters['sha'] }}', ''), eq('a', '${{ join(',', parameters.sha) }}'))
""", "--strict")
    assert run.findings == [], run.output


def test_a_broken_condition_is_still_reported_without_placeholders(check):
    run = check(AZ, "trigger: none\nsteps:\n- script: echo\n  condition: eq('${{ parameters.sha }}', 'a'\n")
    hits = [f for f in run.findings if f["rule"] == "az-condition"]
    assert hits and hits[0]["line"] == 4
    assert "xxxx" not in hits[0]["message"] and "parameters.sha" not in hits[0]["message"]


def test_whole_template_values_and_directive_keys_anywhere(check):
    run = check(AZ, """\
parameters:
- name: ctx
  type: object
  default: {}
- name: beforeBuildSteps
  type: stepList
  default: []
- name: jobs
  type: jobList
  default: []
- name: deployments
  type: deploymentList
  default: []
- name: extraStages
  type: stageList
  default: []
- name: oneStep
  type: step
  default: {script: echo}
- name: oneJob
  type: job
  default: {job: j, steps: [{script: echo}]}
- name: oneStage
  type: stage
  default: {stage: s, jobs: []}
- name: oneDeployment
  type: deployment
  default: {deployment: d, environment: e}
- name: list
  type: object
  default: null
- name: t
  type: number
  default: 10
trigger: none
stages:
- stage: a
  templateContext: ${{ parameters.ctx }}
  jobs: ${{ parameters.jobs }}
- stage: b
  jobs:
  - job: x
    timeoutInMinutes: ${{ parameters.t }}
    templateContext: ${{ parameters.ctx }}
    strategy:
      matrix:
        ${{ each x in parameters.list }}:
          ${{ x.name }}:
            ${{ each v in x.vars }}:
              ${{ v.key }}: ${{ v.value }}
            ${{ if eq(x.name, 'a') }}:
              extra: 1
    steps:
    - ${{ parameters.beforeBuildSteps }}
    - ${{ parameters.oneStep }}
    - ${{ if eq(parameters.t, 10) }}:
      - script: echo
        name: same
    - ${{ else }}:
      - script: echo 2
        name: same
    - ${{ each s in parameters.beforeBuildSteps }}:
      - ${{ s }}
  - ${{ parameters.oneJob }}
  - ${{ each d in parameters.deployments }}:
    - ${{ d }}
  - job: y
    ${{ if eq(parameters.t, 1) }}:
      pool: server
    ${{ elseif eq(parameters.t, 2) }}:
      pool: x
    ${{ else }}:
      pool:
        vmImage: ubuntu-latest
    ${{ insert }}: ${{ parameters.ctx }}
    steps:
    - script: echo
- ${{ parameters.extraStages }}
- ${{ parameters.oneStage }}
""", "--strict")
    assert run.findings == [], run.output


def test_jobs_and_stages_without_names(check):
    run = check(AZ, """\
trigger: none
stages:
- stage:
  jobs:
  - job:
    steps:
    - script: echo
""", "--strict")
    assert run.findings == [], run.output


def test_stage_template_fragment_may_depend_on_callers_names(check):
    text = """\
parameters:
- name: env
  type: string
  default: dev
stages:
- stage: deploy_${{ parameters.env }}
  dependsOn: build
  jobs:
  - job: ship
    dependsOn: smoke
    steps:
    - script: echo
  - job: ship
    steps:
    - script: echo
"""
    run = check("templates/deploy.yml", text, "--dialect", "azure")
    assert {f["rule"] for f in run.findings} == {"az-duplicate-id"}, run.output
    assert "known" not in run.output
    # the same file with a trigger is a pipeline: its names must be its own
    run = check(AZ, "trigger: none\n" + text)
    assert [f["line"] for f in run.findings if f["rule"] == "az-depends-on"] == [8, 11], run.output


def test_timeouts_must_be_integers(check):
    bad = check(AZ, "trigger: none\njobs:\n- job: a\n  timeoutInMinutes: 3h\n  steps:\n  - script: echo\n"
                    "    timeoutInMinutes: 1.5h\n")
    assert [(f["rule"], f["line"]) for f in _errors(bad)] == [("az-schema", 4), ("az-schema", 7)], bad.output
    assert "whole number of minutes" in bad.findings[0]["message"]
    good = check(AZ, """\
parameters:
- name: t
  type: number
  default: 5
trigger: none
jobs:
- job: a
  timeoutInMinutes: '60'
  cancelTimeoutInMinutes: 2
  steps:
  - script: echo
    timeoutInMinutes: ${{ parameters.t }}
- deployment: d
  environment: prod
  timeoutInMinutes: $(t)
  strategy:
    runOnce:
      deploy:
        steps:
        - script: echo
""", "--strict")
    assert good.findings == [], good.output


def test_undeclared_dependencies(check):
    bad = check(AZ, """\
trigger: none
stages:
- stage: build
  jobs:
  - job: a
    steps:
    - script: echo
- stage: test
  jobs:
  - job: t
    steps:
    - script: echo
- stage: deploy
  condition: eq(dependencies.build.result, 'Succeeded')
  jobs:
  - job: d
    variables:
      v: $[ stageDependencies.build.a.outputs['s.v'] ]
    steps:
    - script: echo
""", "--strict")
    assert [(f["rule"], f["line"]) for f in bad.findings] == [
        ("az-undeclared-dependency", 14), ("az-undeclared-dependency", 18)], bad.output
    good = check(AZ, """\
trigger: none
stages:
- stage: build
  jobs:
  - job: a
    steps:
    - script: echo
- stage: deploy
  condition: eq(dependencies.build.result, 'Succeeded')
  jobs:
  - job: d
    variables:
      v: $[ stageDependencies.build.a.outputs['s.v'] ]
    steps:
    - script: echo
  - job: e
    dependsOn: [d]
    condition: eq(dependencies['d'].result, 'Succeeded')
    steps:
    - script: echo
""", "--strict")
    assert good.findings == [], good.output


def test_approval_waited_for_by_a_later_stage_is_used(check):
    run = check(AZ, """\
trigger: none
stages:
- stage: approve
  jobs:
  - job: wait
    pool: server
    steps:
    - task: ManualValidation@1
      inputs: {notifyUsers: a@b.c}
- stage: deploy
  jobs:
  - job: d
    steps:
    - script: echo
""", "--strict")
    assert run.findings == [], run.output


def test_branch_filters_that_never_match(check):
    bad = check(AZ, "trigger:\n  branches:\n    include: [main]\n    exclude: [main]\nsteps:\n- script: echo\n")
    assert [(f["rule"], f["line"]) for f in bad.findings] == [("az-branch-never-matches", 1)], bad.output
    good = check(AZ, "trigger:\n  branches:\n    include: [main, release/*]\n    exclude: [release/old]\n"
                     "  tags:\n    include: [refs/tags/v*]\npr: [main]\nsteps:\n- script: echo\n", "--strict")
    assert good.findings == [], good.output


def test_unknown_key_is_a_warning_and_a_near_miss_an_error(check):
    run = check(AZ, "trigger: none\nsteps:\n- script: echo\n  owner: me\n  displayNam: x\n")
    found = {(f["rule"], f["severity"], f["line"]) for f in run.findings}
    assert found == {("az-unknown-key", "warning", 4), ("az-schema", "error", 5)}, run.output


def test_deployment_steps_template_may_check_out(check):
    run = check(AZ, """\
trigger: none
jobs:
- deployment: ship
  environment: prod
  strategy:
    runOnce:
      deploy:
        steps:
        - template: steps/sparse-checkout.yml
        - script: python -m pkg deploy
""", "--strict")
    assert run.findings == [], run.output
