"""The monitor's report as one self-contained HTML page (no script, no network): per feature the
baseline's and the traffic's distributions side by side, the score and the threshold."""

from __future__ import annotations

from html import escape

from ..targets.base import MonitorResult
from .drift import MISSING, OTHER

_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}.legend span{display:inline-block;width:12px;height:12px;
margin:0 4px 0 12px}"""
_BASE, _NOW = "#9e9e9e", "#1976d2"


def _labels(column: dict) -> list[str]:
    if column.get("kind") == "numeric":
        edges = column["edges"]
        bounds = ["-inf", *(f"{e:.3g}" for e in edges), "inf"]
        return [f"{bounds[i]}..{bounds[i + 1]}" for i in range(len(edges) + 1)] + ["missing"]
    return [{OTHER: "(unseen)", MISSING: "missing"}.get(k, k) for k in column["shares"]]


def _values(shares) -> list[float]:
    return list(shares.values()) if isinstance(shares, dict) else list(shares)


def _bars(baseline: dict, current: dict) -> str:
    """Paired bars per bin: grey the training data, blue the traffic."""
    expected, actual = _values(baseline["shares"]), _values(current["shares"])
    labels = _labels(baseline)
    width, height, top = 16, 60, max(expected + actual + [1e-9])
    parts = []
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        x = i * (2 * width + 6)
        for offset, share, colour, who in ((0, e, _BASE, "training"), (width, a, _NOW, "traffic")):
            h = height * share / top
            parts.append(f'<rect x="{x + offset}" y="{height - h:.1f}" width="{width}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{escape(labels[i])}: {who} {share:.1%}</title></rect>')
    total = len(expected) * (2 * width + 6)
    return f'<svg width="{total}" height="{height}" role="img">{"".join(parts)}</svg>'


def _score(item: dict) -> float:
    """PSI when judged here; a cloud monitor's own distance otherwise (SageMaker: `score`)."""
    value = item.get("psi", item.get("score"))
    return float(value) if value is not None else float("nan")


def _row(name: str, item: dict) -> str:
    state = '<span class="bad">drifted</span>' if item.get("drifted") else '<span class="ok">stable</span>'
    # A cloud monitor's verdict carries scores only; captured traffic judged here also its distributions.
    bars = _bars(item["baseline"], item["current"]) if "baseline" in item and "current" in item else ""
    return (f"<tr><td>{escape(name)}</td><td>{_score(item):.3f}</td><td>{escape(str(item.get('threshold', '')))}</td><td>{state}</td>"
            f"<td>{bars}</td></tr>")


def render(result: MonitorResult) -> str:
    verdict = {"ok": "no drift", "drift": "DRIFT", "quality": "LIVE QUALITY BELOW THRESHOLD",
               "too_little_traffic": "too little traffic to judge", "no_result": "no monitor result yet"}
    rows = sorted(result.features.items(), key=lambda kv: -_score(kv[1]))
    table = "".join(_row(name, item) for name, item in rows)
    if result.prediction:
        table = _row("(predictions)", result.prediction) + table
    quality = ""
    if result.quality:
        q = result.quality
        quality = (f"<p>Live {escape(q['metric'])}: {q.get('value')} on {q['rows']} labelled rows "
                   f"(threshold {q['threshold']:g}): {'passed' if q.get('passed') else escape(str(q.get('note', 'FAILED')))}</p>")
    notes = "".join(f"<li>{escape(n)}</li>" for n in result.notes)
    drifted = "".join(f"<li>{escape(d)}</li>" for d in result.drifted)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Monitor: {escape(result.env)}</title>
<style>{_STYLE}</style></head><body>
<h1>Monitor of {escape(result.env)}: {escape(verdict.get(result.status, result.status))}</h1>
<p>Version {escape(str(result.version))}, {result.rows} rows, {escape(result.window)}; source: {escape(result.source)}.
Score: the population stability index (PSI) against the training data of the version serving, or the
distance the platform's own monitor reports.</p>
{f"<ul class='bad'>{drifted}</ul>" if drifted else ""}{quality}{f"<ul>{notes}</ul>" if notes else ""}
<p class="legend"><span style="background:{_BASE}"></span>training data<span style="background:{_NOW}"></span>traffic</p>
<table><tr><th>feature</th><th>score</th><th>threshold</th><th>state</th><th>distribution</th></tr>{table}</table>
</body></html>
"""
