"""Infrastructure files next to the CI files: CloudFormation under infra/aws (cfn-lint, through
its Python API) and Cloud Build trigger definitions under infra/gcp (strict BuildTrigger parse)."""

from __future__ import annotations

from mlops_gen.validate.context import Context

CFN_REGIONS = ["us-east-1"]


def check_cfn(ctx: Context) -> None:
    import cfnlint.api

    for match in cfnlint.api.lint(ctx.text, regions=CFN_REGIONS):
        rule = f"cfn-{match.rule.id}"
        line = max(int(match.linenumber or 1), 1) - 1
        col = max(int(match.columnnumber or 1), 1) - 1
        ctx.report(rule, (line, col), str(match.message))


def check_trigger(ctx: Context) -> None:
    # imported here: the CloudFormation check (often alone in a forked process, see engine.py) does
    # not need jsonschema and the Cloud Build schema
    from mlops_gen.validate import cloudbuild

    if not isinstance(ctx.data, dict):
        return
    data = cloudbuild.camel_keys(ctx.data)
    cloudbuild.strict_parse(ctx, data, data, message="BuildTrigger", rule="gcb-trigger")
    build = data.get("build")
    if isinstance(build, dict):
        inner = Context(ctx.path, ctx.text, build, ctx.options)
        cloudbuild.check(inner)
        ctx.findings.extend(inner.findings)
