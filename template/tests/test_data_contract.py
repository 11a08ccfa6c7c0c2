"""The gate deploys only a model that deserves it: each test feeds one small table made to show one
defect a careless pipeline would let through, and checks the exit code, the message and gate.json."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import PACKAGE, main

RNG = np.random.default_rng(7)


def use(workdir: Path, frame: pd.DataFrame | None, task: str = "classification", metric: str = "accuracy",
        threshold: float = 0.0, **data) -> Path:
    """Write `frame` as the training table and point mlops.yaml at it."""
    if frame is not None:
        frame.to_csv(workdir / "table.csv", index=False)
    config = yaml.safe_load((workdir / "mlops.yaml").read_text())
    config["task"] = task
    config["data"].update({"source": "table.csv", "target": "label", **data})
    config["gate"].update(metric=metric, threshold=threshold)
    config["gate"].pop("positive_class", None)
    (workdir / "mlops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


def strict_json(path: Path) -> dict:
    def refuse(constant: str):
        raise AssertionError(f"{path.name} holds {constant}: not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def run(*stages: str) -> int:
    for stage in stages:
        code = main([stage])
        if code:
            return code
    return 0


def plans(n: int) -> pd.DataFrame:
    """Churn whose signal is only in the (categorical) plan name and a boolean flag."""
    plan = RNG.choice(["basic", "plus", "premium"], n)
    autopay = RNG.choice([True, False], n)
    churn = np.where((plan == "basic") & ~autopay, "yes", "no")
    return pd.DataFrame({"plan": plan, "autopay": autopay, "region": RNG.choice(["north", "south"], n),
                         "label": churn})


def test_categorical_and_boolean_columns_are_used(workdir: Path) -> None:
    use(workdir, plans(400))
    assert run("train", "evaluate", "gate") == 0
    meta = json.loads((workdir / "artifacts" / "model" / "model.json").read_text())
    assert {c["name"]: c["kind"] for c in meta["schema"]} == {
        "plan": "categorical", "autopay": "categorical", "region": "categorical"}
    assert strict_json(workdir / "artifacts" / "metrics.json")["accuracy"] > 0.95


def test_yes_no_labels_measure_the_minority_class_and_come_back_as_labels(workdir: Path, capsys) -> None:
    from importlib import import_module

    use(workdir, plans(400), metric="f1")
    assert run("train", "evaluate", "gate") == 0
    assert '"positive_class": "yes"' in capsys.readouterr().out
    gate = strict_json(workdir / "artifacts" / "gate.json")
    assert "class 'yes'" in gate["averaging"]
    model, serving = import_module(f"{PACKAGE}.model"), import_module(f"{PACKAGE}.serving")
    pipeline, meta = model.load(workdir / "artifacts" / "model")
    assert serving.predict(pipeline, meta, [["basic", False, "north"], ["premium", True, "south"]]) == ["yes", "no"]


def test_labels_coded_1_and_2_measure_one_class_everywhere(workdir: Path) -> None:
    from sklearn.metrics import f1_score, roc_auc_score

    x = RNG.normal(size=600)
    label = np.where(x + RNG.normal(scale=0.8, size=600) > 0.8, 2, 1)        # 2 is the minority
    use(workdir, pd.DataFrame({"x": x, "label": label}), metric="roc_auc")
    assert run("train", "evaluate") == 0
    metrics = strict_json(workdir / "artifacts" / "metrics.json")
    from importlib import import_module

    model, data = import_module(f"{PACKAGE}.model"), import_module(f"{PACKAGE}.data")
    config = import_module(f"{PACKAGE}.config").load(workdir / "mlops.yaml")
    X, y = data.load_frame(config)
    _, X_test, _, y_test = data.split(config, X, y)
    pipeline, meta = model.load(workdir / "artifacts" / "model")
    assert meta["positive_class"] == 2
    proba = pipeline.predict_proba(X_test)[:, list(pipeline.classes_).index(2)]
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y_test == 2, proba))
    assert metrics["f1"] == pytest.approx(f1_score(y_test, pipeline.predict(X_test), pos_label=2))


def test_a_chance_model_on_imbalanced_data_does_not_pass(workdir: Path, capsys) -> None:
    n = 2000
    label = np.where(RNG.random(n) < 0.03, 1, 0)                          # 3 % positives
    use(workdir, pd.DataFrame({"noise": RNG.normal(size=n), "label": label}), threshold=0.9)
    assert run("train", "evaluate") == 0
    assert main(["gate"]) == 1
    assert "does not beat the trivial baseline" in capsys.readouterr().err
    gate = strict_json(workdir / "artifacts" / "gate.json")
    assert gate["passed"] is False and gate["baseline"]["value"] > 0.95 and gate["baseline"]["lift"] < 0.02


def test_a_nan_metric_fails_the_gate_and_json_stays_json(workdir: Path, capsys) -> None:
    x = RNG.normal(size=40)
    use(workdir, pd.DataFrame({"x": x, "label": 3 * x + RNG.normal(size=40)}), task="regression", metric="r2",
        threshold=-1e9, test_size=0.025, min_test_rows=1)                 # one test row: r2 is undefined
    config = yaml.safe_load((workdir / "mlops.yaml").read_text())
    config["gate"]["min_lift"] = 0
    (workdir / "mlops.yaml").write_text(yaml.safe_dump(config))
    assert run("train", "evaluate") == 0
    assert strict_json(workdir / "artifacts" / "metrics.json")["r2"] is None
    assert main(["gate"]) == 1
    assert "r2 could not be computed" in capsys.readouterr().err
    assert strict_json(workdir / "artifacts" / "gate.json")["value"] is None
    assert main(["register"]) == 1


def test_too_few_test_rows_fail_the_gate(workdir: Path, capsys) -> None:
    use(workdir, pd.DataFrame({"x": [0.3, -1.2, 0.8, 2.0, -0.5, 1.1, 0.2, -2.3], "label": [0, 0, 0, 0, 1, 1, 1, 1]}))
    assert run("train", "evaluate") == 0
    assert main(["gate"]) == 1
    assert "only 2 test rows (data.min_test_rows: 20)" in capsys.readouterr().err


X30 = RNG.normal(size=30)


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"x": X30, "label": ["a"] * 30}), "single class ('a')"),
    (pd.DataFrame({"x": X30, "label": [0.5 + i * 1.37 for i in range(30)]}), "set task: regression"),
    (pd.DataFrame({"x": X30, "label": [None, None, None] + [0, 1] * 13 + [1]}), "3 of 30 rows"),
    (pd.DataFrame({"x": X30, "y": [0, 1] * 15, "label": [0, 1] * 15}), "column 'y' is a copy of the target"),
    (pd.DataFrame({"x": X30, "label": [0] * 29 + [1]}), "class 1 has 1 row"),
    (pd.DataFrame({"when": [f"2024-01-{d:02d}" for d in range(1, 31)], "label": [0, 1] * 15}),
     "no usable feature column"),
])
def test_data_errors_are_one_line_and_exit_2(workdir: Path, capsys, frame: pd.DataFrame, message: str) -> None:
    use(workdir, frame)
    assert main(["train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "\n".join(err)


def test_empty_unreadable_and_duplicate_header_files_exit_2(workdir: Path, capsys) -> None:
    use(workdir, None)
    (workdir / "table.csv").write_text("")
    assert main(["train"]) == 2 and "table.csv is empty" in capsys.readouterr().err
    (workdir / "table.csv").write_bytes("x,label\n\xe9,1\n".encode("latin-1"))
    assert main(["train"]) == 2 and "set data.encoding" in capsys.readouterr().err
    (workdir / "table.csv").write_text("x,x,label\n1,2,0\n")
    assert main(["train"]) == 2 and "duplicate column names: x" in capsys.readouterr().err


def test_an_unreachable_source_exits_2_within_seconds(workdir: Path, capsys) -> None:
    import socket
    import time

    with socket.socket() as closed:          # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    use(workdir, None)
    config = yaml.safe_load((workdir / "mlops.yaml").read_text())
    config["data"]["source"] = f"http://127.0.0.1:{port}/table.csv"
    (workdir / "mlops.yaml").write_text(yaml.safe_dump(config))
    started = time.monotonic()
    assert main(["train"]) == 2
    assert time.monotonic() - started < 25
    assert f"cannot read http://127.0.0.1:{port}/table.csv" in capsys.readouterr().err


def test_an_identifier_in_a_sorted_file_is_named_and_not_used(workdir: Path, capsys) -> None:
    n = 300
    x = RNG.normal(size=n)
    frame = pd.DataFrame({"row_number": range(n), "x": x, "label": (x > 0).astype(int)}).sort_values("label")
    frame["row_number"] = range(n)                                         # sorted by outcome: a leak
    use(workdir, frame)
    assert run("train") == 0
    assert "column row_number (unique in every row: an identifier?" in capsys.readouterr().err
    meta = json.loads((workdir / "artifacts" / "model" / "model.json").read_text())
    assert meta["features"] == ["x"]


def test_a_column_of_free_text_is_refused_when_asked_for(workdir: Path, capsys) -> None:
    frame = pd.DataFrame({"note": [f"customer said thing number {i}" for i in range(100)], "x": RNG.normal(size=100),
                          "label": [0, 1] * 50})
    use(workdir, frame, features=["note", "x"])
    assert main(["train"]) == 2
    assert "column 'note' looks like free text" in capsys.readouterr().err


def test_missing_values_are_imputed_and_accepted_only_where_trained(workdir: Path) -> None:
    from importlib import import_module

    n = 300
    x = RNG.normal(size=n)
    with_gaps = np.where(RNG.random(n) < 0.1, np.nan, RNG.normal(size=n))
    use(workdir, pd.DataFrame({"x": x, "gappy": with_gaps, "label": (x > 0).astype(int)}))
    config = yaml.safe_load((workdir / "mlops.yaml").read_text())
    config["model"].update(estimator="linear", params={})
    (workdir / "mlops.yaml").write_text(yaml.safe_dump(config))
    assert run("train", "evaluate", "gate") == 0
    model, serving = import_module(f"{PACKAGE}.model"), import_module(f"{PACKAGE}.serving")
    pipeline, meta = model.load(workdir / "artifacts" / "model")
    assert len(serving.predict(pipeline, meta, [{"x": 0.5, "gappy": None}, [1.0, ""]])) == 2
    with pytest.raises(serving.BadRequest, match="column 'x': a value is required"):
        serving.predict(pipeline, meta, [{"x": None, "gappy": 1.0}])
    with pytest.raises(serving.BadRequest, match="row 1, column 'x': expected a number, got 'abc'"):
        serving.predict(pipeline, meta, [[1.0, 2.0], ["abc", 2.0]])
    with pytest.raises(serving.BadRequest, match="'inf' is not a finite number"):
        serving.predict(pipeline, meta, [["inf", 2.0]])


def test_a_frame_is_typed_like_the_same_rows_sent_to_the_server() -> None:
    """Training and batch type a frame a column at a time, the server a request cell by cell: the same
    values come out, and a bad table is refused naming the first bad cell in row order."""
    from importlib import import_module

    schema_lib = import_module(f"{PACKAGE}.schema")
    schema = [{"name": "n", "kind": "numeric", "nullable": True}, {"name": "i", "kind": "numeric", "nullable": False},
              {"name": "c", "kind": "categorical", "nullable": True}, {"name": "b", "kind": "categorical", "nullable": False}]
    table = pd.DataFrame({"n": [1.5, np.nan, 2.0], "i": pd.Series([1, 2, 3], dtype="Int64"),
                          "c": ["a", None, 3.0], "b": [True, False, True]})
    rows = table.astype(object).values.tolist()
    typed = schema_lib.coerce(table, schema)
    pd.testing.assert_frame_equal(typed, schema_lib.frame(schema_lib.check_rows(rows, schema), schema))
    assert typed["c"].tolist() == ["a", None, "3"] and typed["b"].tolist() == ["true", "false", "true"]

    bad = table.assign(n=[1.5, np.nan, np.inf], b=[True, [1], True])  # row 2 column n, row 1 column b
    with pytest.raises(schema_lib.SchemaError, match=r"^row 11, column 'b': expected a category, got list$"):
        schema_lib.coerce(bad, schema, offset=10)
    with pytest.raises(schema_lib.SchemaError, match=r"^row 1, column 'b': expected a category, got list$"):
        schema_lib.check_rows(bad.astype(object).values.tolist(), schema)
    with pytest.raises(schema_lib.SchemaError, match=r"^row 2, column 'n': inf is not a finite number$"):
        schema_lib.coerce(bad.assign(b=True), schema)
    with pytest.raises(schema_lib.SchemaError, match=r"^row 1, column 'i': a value is required"):
        schema_lib.coerce(table.assign(i=pd.Series([1, None, 3], dtype="Int64")), schema)


def test_bring_your_own_estimator(workdir: Path, monkeypatch) -> None:
    (workdir / "my_models.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "def make(C=1.0):\n    return LogisticRegression(C=C, max_iter=500)\n")
    monkeypatch.syspath_prepend(str(workdir))
    use(workdir, plans(300))
    config = yaml.safe_load((workdir / "mlops.yaml").read_text())
    config["model"].update(estimator="my_models:make", params={"C": 0.5})
    (workdir / "mlops.yaml").write_text(yaml.safe_dump(config))
    assert run("train", "evaluate", "gate") == 0
    sys.modules.pop("my_models", None)


def test_a_schema_change_is_refused_at_deploy_unless_allowed(workdir: Path, capsys) -> None:
    frame = plans(400)
    use(workdir, frame)
    assert main(["pipeline"]) == 0
    url = strict_json(workdir / ".mlops" / "deployments" / "staging.json")["url"]
    use(workdir, frame.drop(columns=["region"]).assign(tenure=RNG.integers(1, 60, 400)))
    assert run("train", "evaluate", "gate", "register") == 0
    capsys.readouterr()
    assert main(["deploy"]) == 1
    err = capsys.readouterr().err
    assert "column 'tenure' added" in err and "column 'region' removed" in err and "--allow-schema-change" in err
    assert strict_json(workdir / ".mlops" / "deployments" / "staging.json")["version"] == "1"
    assert main(["deploy", "--allow-schema-change"]) == 0
    deployment = strict_json(workdir / ".mlops" / "deployments" / "staging.json")
    assert deployment["version"] == "2" and deployment["url"] == url         # a stable URL per environment
    capsys.readouterr()
    assert main(["smoke"]) == 0
    assert "FAILS with the new version" in capsys.readouterr().out           # version 1's request, reported
    assert main(["undeploy"]) == 0


def test_metrics_are_finite_or_null(workdir: Path) -> None:
    use(workdir, plans(200))
    assert run("train", "evaluate") == 0
    for name in ("metrics.json", "evaluation.json"):
        document = strict_json(workdir / "artifacts" / name)
        assert all(v is None or math.isfinite(v) for v in document.get("baseline", document).values()
                   if not isinstance(v, str))
