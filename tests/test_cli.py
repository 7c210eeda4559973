"""The `cxnlp` command end to end, in-process (CliRunner) and, for stdin and the console script, as a
real subprocess."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from cxnlp.cli import app
from tests.conftest import EXAMPLES, ROOT, small_training_file

runner = CliRunner()
CONTRACT = {"categories", "category_scores", "sentiment", "sentiment_scores", "confidence", "needs_review",
            "evidence", "model_version", "error"}


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_classify_gbk_csv_keeps_columns_and_marks_empty_rows(tmp_path):
    out = tmp_path / "out.csv"
    result = run("classify", EXAMPLES / "tickets_gbk.csv", "-o", out)
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert len(rows) == 12 and set(rows[0]) >= {"工单编号", "日期", "渠道", "投诉内容"} | CONTRACT
    assert "attitude" in rows[0]["categories"].split("|") and rows[0]["sentiment"] == "negative"
    assert "speed" in rows[1]["categories"].split("|")
    empty = rows[9]
    assert "row 11" in empty["error"] and "empty text" in empty["error"]
    assert json.loads(rows[0]["sentiment_scores"])["negative"] > 0.5
    assert "12 rows, 1 errors" in result.stderr


def test_classify_xlsx_to_xlsx(tmp_path):
    out = tmp_path / "out.xlsx"
    result = run("classify", EXAMPLES / "survey.xlsx", "-o", out)
    assert result.exit_code == 0, result.output
    ws = load_workbook(out).active
    header = [c.value for c in ws[1]]
    assert header[:4] == ["编号", "门店", "评价", "评分"] and set(header) >= CONTRACT
    assert ws.max_row == 7


def test_classify_jsonl_reports_bad_line_and_goes_on(tmp_path):
    out = tmp_path / "out.jsonl"
    result = run("classify", EXAMPLES / "chat.jsonl", "-o", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6
    assert rows[4]["error"].startswith("row 5: invalid JSON")
    assert rows[3]["error"] == "row 4: empty text"
    assert rows[5]["session"] == "C-88126" and rows[5]["error"] is None
    assert set(rows[0]) >= CONTRACT | {"session", "text"}


def test_classify_txt_to_stdout():
    result = run("classify", EXAMPLES / "reviews.txt")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows][:2] == ["酒店前台办理入住很快，房间也干净", "押金退了半个月还没到账"]
    assert abs(sum(rows[0]["sentiment_scores"].values()) - 1) < 1e-3


def test_classify_stdin_through_the_console_script():
    done = subprocess.run([sys.executable, "-m", "cxnlp", "classify", "-"], input="客服态度特别差，还挂我电话\n",
                          capture_output=True, text=True, check=True)
    row = json.loads(done.stdout)
    assert row["categories"] == ["attitude"] and row["sentiment"] == "negative"
    assert row["evidence"]["attitude"] and all(
        "客服态度特别差，还挂我电话"[e["start"]:e["end"]] == e["term"] for e in row["evidence"]["attitude"])


def test_unknown_text_column_is_a_clear_error(tmp_path):
    result = run("classify", EXAMPLES / "tickets_gbk.csv", "--text-column", "nope", "-o", tmp_path / "o.csv")
    assert result.exit_code == 1 and "工单编号" in result.stderr
    assert not list(tmp_path.iterdir())


def test_failed_run_leaves_no_output(tmp_path, monkeypatch):
    import cxnlp.batch as batch

    calls = {"n": 0}
    original = batch._classify_chunk

    def flaky(model, rows, column, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return original(model, rows, column, *args, **kwargs)

    monkeypatch.setattr(batch, "_classify_chunk", flaky)
    with pytest.raises(RuntimeError):
        runner.invoke(app, ["classify", str(EXAMPLES / "tickets_gbk.csv"), "-o", str(tmp_path / "o.csv"),
                            "--chunk-size", "3"], catch_exceptions=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["proc", "folder"])
def test_unwritable_output_is_one_line_and_leaves_nothing(tmp_path, where):
    if where == "proc":
        out = Path("/proc/cxnlp-no-such-output.csv")  # a folder no file can be made in
    else:
        out = tmp_path / "taken.csv"
        out.mkdir()  # the target is a folder: the rename fails after everything was classified
    result = run("classify", EXAMPLES / "tickets_gbk.csv", "-o", out)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {out}: cannot write the output there "
                                                  f"({'No such file or directory' if where == 'proc' else 'Is a directory'})"]
    assert not isinstance(result.exception, OSError)
    assert [p.name for p in tmp_path.iterdir()] == ([] if where == "proc" else ["taken.csv"])
    assert where == "proc" or list(out.iterdir()) == []


def test_an_unwritable_json_report_is_one_line_not_a_traceback(tmp_path):
    data = tmp_path / "labeled.csv"
    data.write_text("text,categories,sentiment\n快递三天没到,speed,negative\n", encoding="utf-8")
    out = Path("/proc/cxnlp-no-such-report.json")
    result = run("data", "report", data, "--json", out)
    assert result.exit_code == 1 and not isinstance(result.exception, OSError)
    assert result.stderr.strip().splitlines()[-1] == f"error: {out}: cannot write the output there (No such file or directory)"
    assert [p.name for p in tmp_path.iterdir()] == ["labeled.csv"]


def test_parallel_workers_give_the_same_rows_in_order(tmp_path):
    src = tmp_path / "in.jsonl"
    texts = [f"第{i}单 快递三天没到，客服也不回" if i % 2 else f"第{i}次住，前台很热情" for i in range(60)]
    src.write_text("".join(json.dumps({"n": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)))
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert run("classify", src, "-o", one, "--workers", "1", "--chunk-size", "7").exit_code == 0
    assert run("classify", src, "-o", two, "--workers", "2", "--chunk-size", "7").exit_code == 0
    assert one.read_text() == two.read_text()
    assert [json.loads(line)["n"] for line in two.read_text().splitlines()] == list(range(60))


def test_train_evaluate_round_trip_with_bad_rows(tmp_path):
    data = small_training_file(tmp_path, n=600)
    first_bad = sum(1 for _ in csv.reader(data.open(encoding="utf-8"))) + 1  # spreadsheet row numbers
    header = next(csv.reader(data.open(encoding="utf-8")))
    with data.open("a", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        for text, cats, sentiment in [("", "speed", "negative"), ("态度不错", "attitude", "happy"),
                                      ("还行", "attitude||speed", "neutral"),
                                      ("客服爱答不理", "atitude", "negative")]:  # the last: a typo of a common label
            w.writerow({"text": text, "categories": cats, "sentiment": sentiment, "industry": "x", "channel": "y"})
    out = tmp_path / "mine"
    result = run("train", "--data", data, "--replace", "--out", out, "--set", "classifier.cv_folds=3",
                 "--report-json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert f"row {first_bad}: empty text" in result.stderr
    assert f"row {first_bad + 1}: unknown sentiment 'happy'" in result.stderr
    assert f"row {first_bad + 2}: malformed category label" in result.stderr
    assert f"row {first_bad + 3}: category label 'atitude' looks like a typo of 'attitude' (row skipped)" in result.stderr
    assert "macro F1" in result.stdout
    card = json.loads((out / "model.json").read_text())
    assert card["training_data"]["rows"] == first_bad - 2 and set(card["thresholds"]) == set(card["categories"])
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["categories"]["speed"]) >= {"precision", "recall", "f1", "support", "threshold"}
    result = run("evaluate", "--model", out, "--data", data, "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "e.json").read_text())["sentiment"]["accuracy"] > 0.5
    result = run("classify", EXAMPLES / "reviews.txt", "--model", out)
    assert result.exit_code == 0 and json.loads(result.stdout.splitlines()[0])["model_version"] == card["name"] + "-" + card["version"]


def test_rare_label_gets_a_warning(tmp_path):
    data = small_training_file(tmp_path, n=300)
    rows = list(csv.reader(data.open(encoding="utf-8")))
    cats = rows[0].index("categories")
    rows[1][cats] = rows[2][cats] = rows[3][cats] = "refund"
    rows[4][cats] = rows[5][cats] = ""
    csv.writer(data.open("w", encoding="utf-8", newline="")).writerows(rows)
    result = run("train", "--data", data, "--replace", "--out", tmp_path / "m", "--set", "classifier.cv_folds=2")
    assert result.exit_code == 0, result.output
    assert "label 'refund' has only 3 examples" in result.stdout


def test_training_is_deterministic(tmp_path):
    data = small_training_file(tmp_path, n=400)
    for name in ("a", "b"):
        result = run("train", "--data", data, "--replace", "--out", tmp_path / name, "--set", "classifier.cv_folds=3")
        assert result.exit_code == 0, result.output
    cards = [json.loads((tmp_path / n / "model.json").read_text()) for n in ("a", "b")]
    assert cards[0]["thresholds"] == cards[1]["thresholds"]
    for card in cards:  # wall-clock durations are the only figures two identical runs may differ in
        card["metrics"]["cross_validation"].pop("train_seconds")
        card["metrics"].get("held_out_writers", {}).pop("seconds", None)
    assert cards[0]["metrics"] == cards[1]["metrics"]
    assert cards[0]["training_data"]["sha256"] == cards[1]["training_data"]["sha256"]


def test_unknown_override_is_refused(tmp_path):
    result = run("train", "--config", ROOT / "training" / "default.toml", "--set", "classifier.nope=1",
                 "--out", tmp_path / "m")
    assert result.exit_code == 1 and "nope" in result.stderr


def test_data_report_prints_the_figures():
    result = run("data", "report", ROOT / "data_samples" / "feedback_labeled.csv")
    assert result.exit_code == 0, result.output
    for needle in ("per label", "per sentiment", "per industry", "per channel", "near-duplicate",
                   "distinct character 4-gram share", "4-character openings"):
        assert needle in result.stdout


def test_data_report_counts_rows_per_writer(tmp_path):
    data = tmp_path / "written.csv"
    rows = ["text,categories,sentiment,industry,channel,writer"]
    rows += [f"客服第{i}次没回复我,speed,negative,telecom,online_chat,w1" for i in range(3)]
    rows += ["快递员很有礼貌,attitude,positive,express,survey,w2"]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = run("data", "report", data, "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "per writer" in result.stdout and "2 writers; the largest writes 75.0% of the rows" in result.stdout
    import json
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["per_writer"] == {"w1": 3, "w2": 1} and report["max_writer_share"] == 0.75


def test_summary_says_which_encoding_was_read(tmp_path):
    result = run("classify", EXAMPLES / "tickets_gbk.csv", "-o", tmp_path / "o.jsonl")
    assert result.exit_code == 0 and "encoding gb18030" in result.stderr


def test_every_sheet_is_classified_and_the_summary_names_them(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "一月"
    wb.active.append(["评价"])
    wb.active.append(["快递三天没到"])
    second = wb.create_sheet("二月")
    second.append(["评价"])
    second.append(["客服态度很差"])
    wb.save(tmp_path / "in.xlsx")
    result = run("classify", tmp_path / "in.xlsx", "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["sheet"], r["评价"]) for r in rows] == [("一月", "快递三天没到"), ("二月", "客服态度很差")]
    assert "sheets 一月, 二月" in result.stderr
    result = run("classify", tmp_path / "in.xlsx", "--sheet", "二月", "-o", tmp_path / "one.jsonl")
    assert result.exit_code == 0 and "sheets 二月" in result.stderr
    assert len((tmp_path / "one.jsonl").read_text(encoding="utf-8").splitlines()) == 1


def test_undecodable_row_is_reported_and_the_rest_classified(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes("客服态度特别差\n".encode() + b"\xff\xfe\xfd\n" + "快递三天没到\n".encode())
    result = run("classify", src)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[1]["error"].startswith("row 2: not valid utf-8") and rows[2]["error"] is None
    assert rows[1]["error"].endswith("the row was not read")  # not also "empty text"
    assert "3 rows, 1 errors" in result.stderr and "encoding utf-8" in result.stderr


def test_binary_input_is_named_and_messages_stay_short(tmp_path):
    (tmp_path / "photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10)
    result = run("classify", tmp_path / "photo.csv", "-o", tmp_path / "o.csv")
    assert result.exit_code == 1 and "looks like a PNG image" in result.stderr
    (tmp_path / "wide.csv").write_text(",".join(f"第{i}列" for i in range(2_000_000)) + "\n", encoding="utf-8")
    result = run("classify", tmp_path / "wide.csv", "-o", tmp_path / "o.csv")
    assert result.exit_code == 1 and "cannot tell which column" in result.stderr and len(result.stderr) < 1000
    assert not (tmp_path / "o.csv").exists()


def test_classify_output_neutralises_formulas_and_gets_the_users_mode(tmp_path):
    import os

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": '=HYPERLINK("http://evil","客服态度差")'}, ensure_ascii=False) + "\n"
                   + json.dumps({"text": "@SUM(1+1)*cmd|' /C calc'!A0"}) + "\n", encoding="utf-8")
    old = os.umask(0o022)
    try:
        for suffix in (".csv", ".tsv", ".xlsx"):
            out = tmp_path / f"out{suffix}"
            assert run("classify", src, "-o", out).exit_code == 0
            assert out.stat().st_mode & 0o777 == 0o644
            if suffix == ".xlsx":
                texts = [row[0].value for row in load_workbook(out).active.iter_rows(min_row=2)]
            else:
                with out.open(encoding="utf-8-sig", newline="") as fh:
                    texts = [r[0] for r in csv.reader(fh, delimiter="\t" if suffix == ".tsv" else ",")][1:]
            assert texts == ["'=HYPERLINK(\"http://evil\",\"客服态度差\")", "'@SUM(1+1)*cmd|' /C calc'!A0"]
    finally:
        os.umask(old)


def test_help_shows_flags_as_flags_and_no_type_names():
    for command in (["classify"], ["train"], ["evaluate"], ["serve"], ["review"], ["ledger", "export"],
                    ["ledger", "summary"], ["data", "report"]):
        result = run(*command, "--help")
        assert result.exit_code == 0, result.output
        for name in ("<bool>", "<int>", "<path>", "list[", "BOOLEAN", "INTEGER", "PATH", "TEXT"):
            option_lines = [line for line in result.stdout.splitlines() if line.strip().startswith("-")]
            assert not any(name in line for line in option_lines), (command, name, result.stdout)
    help_text = run("classify", "--help").stdout
    assert any(line.split()[:2] == ["--ledger", "Record"] for line in help_text.splitlines())
    assert "--encoding NAME" in help_text and "--sheet NAME" in help_text


def test_version():
    import tomllib

    result = run("--version")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert result.exit_code == 0 and result.stdout.strip() == f"cxnlp {version}"


def _big_input(tmp_path, rows: int = 200_000):
    src = tmp_path / "big.csv"
    texts = ["快递三天没到，客服也不回", "前台很热情，房间干净", "退款一周了还没到账，请尽快处理"]
    with src.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])
        writer.writerows([i, texts[i % 3]] for i in range(rows))
    return src


@pytest.mark.slow
@pytest.mark.parametrize("how, code, name", [("term", 143, "SIGTERM"), ("int", 130, "Ctrl-C")])
def test_interrupted_classify_leaves_no_file_and_says_one_line(tmp_path, how, code, name):
    import os
    import signal
    import time

    src = _big_input(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "cxnlp", "classify", str(src), "-o", str(out_dir / "o.xlsx"),
                             "--workers", "2", "--chunk-size", "500"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        while not list(out_dir.iterdir()) and proc.poll() is None:  # wait for the temporary output file
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        if how == "term":
            proc.send_signal(signal.SIGTERM)  # the parent only, as a service manager does
        else:
            os.killpg(proc.pid, signal.SIGINT)  # the whole process group, as Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [f"interrupted ({name}): no {out_dir / 'o.xlsx'} written"], err
    assert list(out_dir.iterdir()) == []


FAST = ("--set", "classifier.cv_folds=3", "--set", "evaluation.cross_validate=false")


def _small_recipe(tmp_path, data_file) -> "Path":
    """The shipped recipe with one small labeled file as its only [[data]] source (fast to train)."""
    text = (ROOT / "training" / "default.toml").read_text(encoding="utf-8")
    head, rest = text.split("[[data]]", 1)
    tail = rest[rest.index("[features]"):]
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(head + f'[[data]]\nkind = "labeled"\npath = "{data_file.name}"\nweight = 1.0\n'
                      f'calibrate = true\n\n' + tail, encoding="utf-8")
    return recipe


def test_train_adds_rows_to_the_recipe_data_and_versions_each_model(tmp_path):
    import re

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    recipe = _small_recipe(tmp_path, small_training_file(shipped, n=300).rename(tmp_path / "base.csv"))
    mine = small_training_file(tmp_path / "shipped", n=120)
    added, alone = tmp_path / "added", tmp_path / "alone"
    result = run("train", "--config", recipe, "--data", mine, "--out", added, *FAST)
    assert result.exit_code == 0, result.output
    assert "added to the recipe's data" in result.stderr
    card = json.loads((added / "model.json").read_text())
    sources = card["training_data"]["sources"]
    assert sources == {"base.csv": 300, str(mine.resolve()): 120} and card["training_data"]["rows"] == 420
    assert "300 rows from base.csv" in result.stderr and f"120 rows from {mine.resolve()}" in result.stderr
    from cxnlp.recipe import load_recipe

    release = load_recipe(ROOT / "training" / "default.toml")[0].model.version  # the shipped recipe's release
    assert re.fullmatch(re.escape(release) + r"\+\d{8}\.[0-9a-f]{8}", card["version"])
    assert card["version"].endswith("." + card["training_data"]["sha256"][:8])

    result = run("train", "--config", recipe, "--data", mine, "--replace", "--out", alone, *FAST)
    assert result.exit_code == 0, result.output
    assert "used alone (--replace)" in result.stderr
    other = json.loads((alone / "model.json").read_text())
    assert other["training_data"]["sources"] == {str(mine.resolve()): 120}
    assert other["version"] != card["version"] and other["version"].split("+")[0] == release

    # the new model against the shipped one, on the same rows
    result = run("evaluate", "--data", mine, "--model", added, "--compare", ROOT / "models" / "default",
                 "--json", tmp_path / "cmp.json")
    assert result.exit_code == 0, result.output
    shipped_card = json.loads((ROOT / "models" / "default" / "model.json").read_text())
    header = result.stdout.splitlines()[1]
    assert card["version"] in header and shipped_card["version"] in header
    for needle in ("F1 attitude", "macro f1", "exact match", "sentiment accuracy"):
        assert needle in result.stdout
    both = json.loads((tmp_path / "cmp.json").read_text())
    assert both["n"] == 120 and both["model"]["model_version"].endswith(card["version"])
    assert both["baseline"]["model_version"].endswith(shipped_card["version"])
    assert both["difference"]["macro_f1"] == round(both["model"]["macro_f1"] - both["baseline"]["macro_f1"], 4)
    assert both["difference"]["sentiment_accuracy"] == round(
        both["model"]["sentiment"]["accuracy"] - both["baseline"]["sentiment"]["accuracy"], 4)


def test_shipped_recipe_data_is_found_from_the_package_root(tmp_path, monkeypatch):
    from cxnlp.store import default_model_dir, read_card
    from cxnlp.training import resolve_recipe

    monkeypatch.chdir(tmp_path)  # another folder: the shipped data must not be looked up here
    mine = small_training_file(tmp_path, n=50)
    shipped = read_card(default_model_dir())["recipe"]["data"]
    recipe, root = resolve_recipe(None, [mine], [])
    assert root == ROOT and len(recipe.data) == len(shipped) + 1
    assert [s.path for s in recipe.data[:-1]] == [s["path"] for s in shipped]
    assert all((root / s.path).exists() for s in recipe.data if s.path)
    recipe, _ = resolve_recipe(None, [mine], [], replace=True)
    assert [s.path for s in recipe.data] == [str(mine.resolve())]


def test_compare_does_not_go_with_cross_validate(tmp_path):
    result = run("evaluate", "--cross-validate", "--data", small_training_file(tmp_path, n=30),
                 "--compare", ROOT / "models" / "default")
    assert result.exit_code == 2 and "does not go with --cross-validate" in result.output
