"""Every rule `mlops-gen validate` can report: id, default severity, one-line doc.

Three levels. An error is only what the service is documented (or known from its source or
observed behaviour) to reject, or what makes the run fail; its doc names that behaviour. A warning
is what the service accepts but is very likely wrong at run time; warnings fail the command only
with `--strict` (which generated repositories use). A note is advice and style; it never fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_gen.validate.findings import ERROR, NOTE, WARNING


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    dialect: str  # yaml | aws | azure | gcp | all | infra
    doc: str


_RULES = [
    # YAML layer, every file
    Rule("yaml-syntax", ERROR, "yaml", "The file is not valid YAML (or JSON)."),
    Rule("yaml-too-complex", ERROR, "yaml",
         "Nesting deeper than 200 levels or aliases that expand past 100,000 nodes: refused before parsing, "
         "as no CI file needs it and expanding it would take minutes and gigabytes."),
    Rule("yaml-duplicate-key", ERROR, "yaml", "A key appears twice in one mapping; loaders silently keep one."),
    Rule("yaml-undeclared-alias", ERROR, "yaml", "An alias (*name) refers to an anchor (&name) that is not declared."),
    Rule("yaml-octal", WARNING, "yaml", "An unquoted number with a leading 0 is read as octal by YAML 1.1 loaders."),
    Rule("ci-not-mapping", ERROR, "yaml", "A CI file must be a YAML mapping at the top level."),
    Rule("ci-dialect", ERROR, "yaml", "The file given cannot be recognised as buildspec, Azure Pipelines or Cloud Build."),
    Rule("shell-ignore-failure", NOTE, "all",
         "A command ends with `|| true` (or `|| :`) or runs `set +e`: its failure never fails the step; "
         "fine for cleanup, worth a look elsewhere."),
    # AWS CodeBuild buildspec
    Rule("bs-schema", ERROR, "aws",
         "CodeBuild rejects the buildspec (YAML_FILE_ERROR): a value of the wrong type or form, a missing "
         "required key, or a key that is a near miss of a documented one (a typo CodeBuild would ignore)."),
    Rule("bs-unknown-key", WARNING, "aws",
         "A key the build specification does not document (e.g. `artifacts: type: zip`); CodeBuild ignores it."),
    Rule("bs-empty-list", WARNING, "aws",
         "A key whose list is empty (null), e.g. every entry commented out; CodeBuild accepts it as empty."),
    Rule("bs-command-mapping", ERROR, "aws",
         "CodeBuild rejects the buildspec (`Expected Commands[0] to be of string type`): YAML turned a command "
         "into a mapping (`- echo a: b`); quote the whole command."),
    Rule("bs-command-empty", WARNING, "aws", "An empty (null) item in a command list."),
    Rule("bs-reserved-variable", ERROR, "aws",
         "CodeBuild rejects environment variable names starting with CODEBUILD_ (documented as reserved)."),
    Rule("bs-exported-aws", ERROR, "aws",
         "CodeBuild rejects exporting variables whose names start with AWS_ (documented)."),
    Rule("bs-default-shell", WARNING, "aws",
         "A command uses a bash feature ([[ ]], pipefail, source, arrays, ...) but no `env.shell: bash`: "
         "CodeBuild runs Linux commands with /bin/sh (dash on Ubuntu images). Not on Windows buildspecs."),
    Rule("bs-yaml11-bool", ERROR, "aws",
         "CodeBuild rejects a boolean where a string is required: its YAML 1.1 parser reads an unquoted "
         "yes/no/on/off/y/n as a boolean."),
    # Azure Pipelines
    Rule("az-schema", ERROR, "azure",
         "Azure rejects the pipeline when it is compiled: a value of the wrong type or form (e.g. "
         "`timeoutInMinutes: 3h`), a missing required key, or a near miss of a known key (Microsoft's schema)."),
    Rule("az-unknown-key", WARNING, "azure",
         "A key Microsoft's schema does not list at that place and that is no near miss of one; Azure ignores "
         "it or uses it undocumented."),
    Rule("az-empty-value", WARNING, "azure",
         "A key whose list is empty (null), e.g. every entry commented out; Azure reads it as no items."),
    Rule("az-unknown-task", ERROR, "azure",
         "Azure rejects the run when a task is not installed: a near-miss of a built-in task name, a major version "
         "the task does not have, or a task without @version (allow a custom one with --allow-task)."),
    Rule("az-extension-task", WARNING, "azure",
         "A Marketplace/extension task (publisher.extension.Task) cannot be checked offline; allow it by name."),
    Rule("az-custom-task", WARNING, "azure",
         "A task that is neither built-in nor close to a built-in name: a custom task; allow it by name."),
    Rule("az-task-input", ERROR, "azure", "A built-in task input has a value the task does not accept."),
    Rule("az-task-unknown-input", WARNING, "azure",
         "A built-in task is given an input it does not have; Azure ignores it (often a typo)."),
    Rule("az-task-required-input", WARNING, "azure", "A built-in task is missing an input it marks as required."),
    Rule("az-id-syntax", ERROR, "azure",
         "Stage, job and step names may contain only A-Z, a-z, 0-9 and _, and must not start with a digit."),
    Rule("az-duplicate-id", ERROR, "azure",
         "Azure rejects the pipeline (`... is used more than once`): two stages, two jobs of one stage, or two "
         "steps of one job share a name (names inserted by ${{ if }}/${{ else }} may exclude each other)."),
    Rule("az-depends-on", ERROR, "azure",
         "Azure rejects the pipeline (`depends on unknown ...`): `dependsOn` names a stage or job that does not "
         "exist, or itself (in a template fragment, names from outside it are not checked)."),
    Rule("az-deployment-environment", ERROR, "azure", "A deployment job has no `environment`."),
    Rule("az-deployment-checkout", ERROR, "azure",
         "A deployment job runs repository scripts but never runs `checkout: self` (deployments do not check out)."),
    Rule("az-continue-on-error", WARNING, "azure", "`continueOnError: true` turns a failed step or job into a warning."),
    Rule("az-condition", ERROR, "azure",
         "Azure rejects the pipeline (`Unexpected symbol`, `Unrecognized value`): a `condition` is malformed "
         "(unbalanced brackets or quotes, bare names, unknown functions, wrong argument counts)."),
    Rule("az-template-macro", ERROR, "azure",
         "A `template:` path uses a $(macro), which is not expanded at compile time; use ${{ variables.x }}."),
    Rule("az-undeclared-dependency", WARNING, "azure",
         "A condition or variable reads dependencies.X (stageDependencies.S) where X (S) is not a dependency "
         "(stages depend on the previous stage by default, jobs on nothing): Azure reads null there."),
    Rule("az-approval-unused", WARNING, "azure",
         "An agentless job with a ManualValidation task that no job (nor later stage) depends on: nothing "
         "waits for the approval."),
    Rule("az-branch-never-matches", WARNING, "azure",
         "A trigger/pr branch filter that can never match: every included branch is also excluded, or a pr "
         "filter names a tag (refs/tags/...)."),
    # Google Cloud Build
    Rule("gcb-proto", ERROR, "gcp",
         "Cloud Build rejects the config: it does not parse into the `Build` message (wrong type, unknown field)."),
    Rule("gcb-schema", ERROR, "gcp",
         "Cloud Build rejects the config: a wrong type or form, a missing required key, a field its Build "
         "message does not have (gcloud: `unused`), or a near miss of a known key."),
    Rule("gcb-unknown-key", WARNING, "gcp",
         "A key the config schema does not list but Cloud Build's API still has (deprecated or newer field)."),
    Rule("gcb-empty-list", WARNING, "gcp", "A key whose list is empty (null); Cloud Build reads it as empty."),
    Rule("gcb-wait-for-string", WARNING, "gcp",
         "`waitFor: id` (a string, not a list): gcloud builds submit accepts it, other readers may not."),
    Rule("gcb-substitution-name", ERROR, "gcp",
         "Cloud Build rejects user-defined substitution names that do not match _[A-Z0-9_]+."),
    Rule("gcb-substitution-null", WARNING, "gcp",
         "A substitution has no value; the build only works if every run supplies it."),
    Rule("gcb-undefined-substitution", WARNING, "gcp",
         "A $_SUBSTITUTION is used but not defined in the file; the trigger must supply it (or set ALLOW_LOOSE)."),
    Rule("gcb-unused-substitution", WARNING, "gcp",
         "A substitution is defined but never used: manual builds fail on it unless ALLOW_LOOSE; triggered "
         "builds allow it."),
    Rule("gcb-unknown-substitution", ERROR, "gcp",
         "Cloud Build rejects the build (`not a valid built-in substitution`): a $NAME / ${NAME} (NAME in "
         "[A-Z_][A-Z0-9_]*) that is neither built-in nor defined (not checked with dynamicSubstitutions)."),
    Rule("gcb-shell-dollar", ERROR, "gcp",
         "Cloud Build rejects the build: an upper-case shell $VAR in args/entrypoint/env/dir is taken as a "
         "substitution; write $$VAR (not checked with dynamicSubstitutions)."),
    Rule("gcb-loose-substitution", WARNING, "gcp",
         "With ALLOW_LOOSE, a $NAME that is no substitution is accepted and replaced by an empty string."),
    Rule("gcb-script-substitution", WARNING, "gcp",
         "A $_SUBSTITUTION or built-in in a `script`: Cloud Build does not substitute scripts; without "
         "automapSubstitutions (or env) the shell sees an unset variable."),
    Rule("gcb-wait-for", ERROR, "gcp",
         "Cloud Build rejects the build (`depends on ..., which has not been defined`): `waitFor` names a step "
         "id not defined by an earlier step."),
    Rule("gcb-duplicate-id", ERROR, "gcp", "Cloud Build rejects the build: two steps share an `id`."),
    Rule("gcb-secret-env", ERROR, "gcp",
         "Cloud Build rejects the build: a step's `secretEnv` names a secret not declared in `availableSecrets`."),
    Rule("gcb-gcr-io", NOTE, "gcp",
         "An image is pushed to a gcr.io name: that works only where gcr.io is backed by Artifact Registry "
         "(Container Registry itself is shut down); a pkg.dev name says where the image goes."),
    # infra
    Rule("gcb-trigger", ERROR, "infra",
         "Cloud Build rejects the trigger: a file under infra/gcp does not parse into its BuildTrigger message."),
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
