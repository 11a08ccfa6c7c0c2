"""`mlops-gen demo` without a terminal: heartbeat lines while a command is silent, and the
endpoint and a real prediction printed as soon as the local pipeline has deployed, before the CI
runs (which take minutes). Cheap: rendering, install and pipeline are replaced."""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from click.testing import CliRunner

from mlops_gen import demo as demo_module


def test_run_prints_heartbeats_with_elapsed_time_and_last_line(tmp_path, capsys):
    script = "import time; print('loading data', flush=True); time.sleep(1.2); print('done', flush=True)"
    seconds = demo_module._run([sys.executable, "-c", script], tmp_path, {}, heartbeat_every=0.2)
    out = capsys.readouterr().out
    beats = re.findall(r"^\[demo\] … python\S* -c import time; .*… \(running, (\d\.\d) s\): loading data$", out, re.M)
    assert len(beats) >= 3, out
    assert "loading data\n" in out and out.rstrip().endswith("done")
    assert seconds >= 1.2


def test_endpoint_and_prediction_are_printed_before_the_ci_runs(tmp_path, monkeypatch):
    class Model(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps({"predictions": [len(body["instances"]) * 0.75]}).encode())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Model)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"

    def fake_render(dest):
        (dest / "artifacts").mkdir(parents=True)
        (dest / ".mlops" / "deployments").mkdir(parents=True)
        (dest / "artifacts" / "metrics.json").write_text('{"auc": 0.9}')
        (dest / "artifacts" / "sample.json").write_text('{"instances": [[1, 2]]}')
        (dest / ".mlops" / "deployments" / "staging.json").write_text(json.dumps({"url": url, "version": "3"}))
        for name in ("buildspec.yml", "cloudbuild.yaml"):
            (dest / name).write_text("")
        (dest / "src" / "pkg").mkdir(parents=True)
        (dest / "src" / "pkg" / "__main__.py").write_text("")

    calls = []

    def fake_run(command, cwd, env, heartbeat_every=10.0, expect=0):
        calls.append(command)
        print("RUN " + " ".join(command[-4:]))
        return 0.1

    def fake_operate(dest, endpoint, stage):
        assert endpoint == url
        stage(["monitor"], expect=1)
        return {"drifted": "a, b", "report": "report.html"}

    monkeypatch.setattr(demo_module, "render", fake_render)
    monkeypatch.setattr(demo_module, "_run", fake_run)
    monkeypatch.setattr(demo_module, "operate", fake_operate)
    try:
        result = CliRunner().invoke(demo_module.demo, [str(tmp_path / "demo")], catch_exceptions=False)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    out = result.output
    first_ci = out.index("RUN --provider aws")
    assert out.index(f"endpoint:   {url} (model version 3, staging)") < first_ci
    assert out.index("prediction: POST") < out.index("-> 0.75") < out.index("-m pkg monitor") < first_ci
    assert "monitor:   drift found in a, b; report: report.html" in out
    assert out.index("Demo finished") > out.index("RUN --provider gcp")  # the final summary stays
    assert len([c for c in calls if "ci" in c]) == 2
