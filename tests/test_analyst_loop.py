"""The analyst loop end to end, as the README tells it: classify a month of tickets into the ledger,
read the summary and the register, correct ten tags, retrain with the corrections, reload the running
service, and see the corrected cases classified as corrected."""
from __future__ import annotations

import csv
import json

import httpx
from openpyxl import load_workbook
from typer.testing import CliRunner

from cxnlp.cli import app
from cxnlp.settings import get_settings
from tests.conftest import SAMPLES, small_training_file
from tests.test_service import free_port, start_server, stop

runner = CliRunner()


def test_month_of_tickets_to_corrected_model(tmp_path, monkeypatch):
    monkeypatch.setenv("CXNLP_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    get_settings.cache_clear()
    try:
        texts = [r["text"] for r in csv.DictReader((SAMPLES / "feedback_labeled.csv").open(encoding="utf-8"))]
        tickets = tmp_path / "tickets_2026-11.csv"
        with tickets.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["工单编号", "日期", "渠道", "投诉内容"])
            for i, t in enumerate(texts[1000:1040]):
                w.writerow([f"GD202611{i:04d}", f"2026-11-{1 + i % 28:02d} 10:00", ["电话", "在线", "问卷"][i % 3], t])
        for _ in range(2):  # the second run records nothing new
            result = runner.invoke(app, ["classify", str(tickets), "-o", str(tmp_path / "out.csv"), "--ledger"])
            assert result.exit_code == 0, result.output
        assert "0 recorded, 40 already there" in result.stderr

        result = runner.invoke(app, ["ledger", "summary", "--month", "2026-11", "--format", "json"])
        summary = json.loads(result.stdout)
        assert summary["total"] == 40 and set(summary["by_category"]) == {"attitude", "expertise", "process", "speed"}
        result = runner.invoke(app, ["ledger", "export", "--month", "2026-11", "-o", str(tmp_path / "台账.xlsx")])
        assert result.exit_code == 0 and load_workbook(tmp_path / "台账.xlsx")["2026-11"].max_row == 41

        result = runner.invoke(app, ["review", "--limit", "10", "-o", str(tmp_path / "review.xlsx")])
        assert result.exit_code == 0, result.output
        wb = load_workbook(tmp_path / "review.xlsx")
        ws = wb.active
        corrected: dict[str, list[str]] = {}
        for row in range(2, 12):
            predicted = set((ws.cell(row, 4).value or "").split("|")) - {""}
            # a deliberate correction: the opposite of what the model said for attitude
            new = sorted(predicted ^ {"attitude"})
            ws.cell(row, 7).value = "|".join(new) or "none"
            corrected[ws.cell(row, 3).value] = new
        wb.save(tmp_path / "review.xlsx")
        result = runner.invoke(app, ["review", "--import", str(tmp_path / "review.xlsx"), "--reviewer", "王芳"])
        assert "applied 10 corrections" in result.stderr

        mine = tmp_path / "models" / "mine"  # under the service's model root (set below)
        result = runner.invoke(app, ["train", "--data", str(small_training_file(tmp_path, n=500)), "--with-ledger", "--replace",
                                     "--out", str(mine), "--set", "classifier.cv_folds=3"])
        assert result.exit_code == 0, result.output
        assert json.loads((mine / "model.json").read_text())["ledger_corrections"] == 10
    finally:
        get_settings.cache_clear()

    port = free_port()
    monkeypatch.setenv("CXNLP_MODEL_ROOT", str(tmp_path / "models"))
    proc = start_server(port, tmp_path)  # the shipped model
    try:
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(f"{base}/v1/model/reload", json={"model_dir": str(mine)}, timeout=30)
        assert r.status_code == 200 and r.json()["name"]
        results = httpx.post(f"{base}/v1/classify", json={"texts": list(corrected)}, timeout=30).json()["results"]
        # the ledger stores texts with personal data masked; the originals are recognized all the same
        assert [r["categories"] for r in results] == list(corrected.values())
    finally:
        stop(proc)
