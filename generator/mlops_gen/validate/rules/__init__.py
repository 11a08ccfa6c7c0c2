"""Every rule `mlops-gen validate` can report: id, default severity, one-line doc.

Errors are things the CI service rejects, or that certainly break the run. Warnings are things
the service accepts but that hide failures or are deprecated; they are printed but only fail the
command with `--strict` (which generated repositories use).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_gen.validate.findings import ERROR, WARNING


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    dialect: str  # yaml | aws | azure | gcp | all | infra
    doc: str


_RULES = [
    # YAML layer, every file
    Rule("yaml-syntax", ERROR, "yaml", "The file is not valid YAML (or JSON)."),
    Rule("yaml-duplicate-key", ERROR, "yaml", "A key appears twice in one mapping; loaders silently keep one."),
    Rule("yaml-undeclared-alias", ERROR, "yaml", "An alias (*name) refers to an anchor (&name) that is not declared."),
    Rule("yaml-octal", WARNING, "yaml", "An unquoted number with a leading 0 is read as octal by YAML 1.1 loaders."),
    Rule("ci-not-mapping", ERROR, "yaml", "A CI file must be a YAML mapping at the top level."),
    Rule("ci-dialect", ERROR, "yaml", "The file given cannot be recognised as buildspec, Azure Pipelines or Cloud Build."),
    Rule("shell-ignore-failure", WARNING, "all",
         "A step ends a command with `|| true` (or `|| :`) or runs `set +e`, so its failure is hidden."),
    # AWS CodeBuild buildspec
    Rule("bs-schema", ERROR, "aws",
         "The buildspec does not match the 0.2 build specification (unknown key, wrong type, missing key)."),
    Rule("bs-command-mapping", ERROR, "aws",
         "A command that YAML turned into a mapping (`- echo a: b`); quote the whole command."),
    Rule("bs-command-empty", WARNING, "aws", "An empty (null) item in a command list."),
    Rule("bs-reserved-variable", ERROR, "aws", "Environment variable names starting with CODEBUILD_ are reserved."),
    Rule("bs-exported-aws", ERROR, "aws", "Variables whose names start with AWS_ cannot be exported."),
    Rule("bs-default-shell", WARNING, "aws",
         "No `env.shell`: CodeBuild runs Linux commands with /bin/sh, not bash; set `shell: bash`."),
    Rule("bs-yaml11-bool", ERROR, "aws",
         "An unquoted yes/no/on/off/y/n where a string is meant; CodeBuild's YAML 1.1 parser makes it a boolean."),
    # Azure Pipelines
    Rule("az-schema", ERROR, "azure", "The pipeline does not match Microsoft's Azure Pipelines schema."),
    Rule("az-unknown-task", ERROR, "azure",
         "A task that is not in Azure Pipelines' built-in list (allow it with --allow-task or allow-tasks)."),
    Rule("az-extension-task", WARNING, "azure",
         "A Marketplace/extension task (publisher.extension.Task) cannot be checked offline; allow it by name."),
    Rule("az-task-input", ERROR, "azure", "A built-in task input has a value the task does not accept."),
    Rule("az-task-unknown-input", WARNING, "azure",
         "A built-in task is given an input it does not have; Azure ignores it (often a typo)."),
    Rule("az-task-required-input", WARNING, "azure", "A built-in task is missing an input it marks as required."),
    Rule("az-id-syntax", ERROR, "azure",
         "Stage, job and step names may contain only A-Z, a-z, 0-9 and _, and must not start with a digit."),
    Rule("az-duplicate-id", ERROR, "azure", "Two stages, two jobs of one stage, or two steps of one job share a name."),
    Rule("az-depends-on", ERROR, "azure", "`dependsOn` names a stage or job that does not exist (or itself)."),
    Rule("az-deployment-environment", ERROR, "azure", "A deployment job has no `environment`."),
    Rule("az-deployment-checkout", ERROR, "azure",
         "A deployment job runs repository scripts but never runs `checkout: self` (deployments do not check out)."),
    Rule("az-continue-on-error", WARNING, "azure", "`continueOnError: true` turns a failed step or job into a warning."),
    Rule("az-condition", ERROR, "azure",
         "A `condition` expression is malformed: unbalanced brackets or quotes, bare names, unknown functions."),
    Rule("az-template-macro", ERROR, "azure",
         "A `template:` path uses a $(macro), which is not expanded at compile time; use ${{ variables.x }}."),
    # Google Cloud Build
    Rule("gcb-proto", ERROR, "gcp", "The config does not parse into Cloud Build's `Build` message (strict)."),
    Rule("gcb-schema", ERROR, "gcp", "The config does not match the Cloud Build schema."),
    Rule("gcb-substitution-name", ERROR, "gcp", "User-defined substitutions must match _[A-Z0-9_]+."),
    Rule("gcb-substitution-null", WARNING, "gcp",
         "A substitution has no value; the build only works if every run supplies it."),
    Rule("gcb-undefined-substitution", WARNING, "gcp",
         "A $_SUBSTITUTION is used but not defined in the file; the trigger must supply it (or set ALLOW_LOOSE)."),
    Rule("gcb-unused-substitution", ERROR, "gcp",
         "A substitution is defined but never used; Cloud Build rejects that unless ALLOW_LOOSE."),
    Rule("gcb-unknown-substitution", ERROR, "gcp", "A $NAME that is neither a built-in substitution nor starts with _ (not checked with dynamicSubstitutions)."),
    Rule("gcb-shell-dollar", ERROR, "gcp",
         "A shell $VAR in a step's args/entrypoint/env/dir: Cloud Build substitutes it; write $$VAR "
         "(not checked with dynamicSubstitutions)."),
    Rule("gcb-wait-for", ERROR, "gcp", "`waitFor` names a step id that is not defined in an earlier step."),
    Rule("gcb-duplicate-id", ERROR, "gcp", "Two steps share an `id`."),
    Rule("gcb-secret-env", ERROR, "gcp", "A step's `secretEnv` names a secret not declared in `availableSecrets`."),
    Rule("gcb-gcr-io", WARNING, "gcp",
         "An image is pushed to Container Registry (gcr.io), which is shut down; push to Artifact Registry."),
    # infra
    Rule("gcb-trigger", ERROR, "infra", "A trigger file under infra/gcp does not parse into Cloud Build's BuildTrigger."),
    Rule("cfn", ERROR, "infra", "cfn-lint finding in a CloudFormation template (rule id cfn-<cfn-lint id>)."),
]

RULES: dict[str, Rule] = {r.id: r for r in _RULES}


def severity_of(rule_id: str) -> str:
    rule = RULES.get(rule_id)
    if rule is not None:
        return rule.severity
    if rule_id.startswith("cfn-"):
        return WARNING if rule_id.startswith(("cfn-W", "cfn-I")) else ERROR
    raise KeyError(rule_id)
