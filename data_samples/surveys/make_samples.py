"""Build the sample survey exports of `data_samples/surveys/` (deterministic: same files on every run).

The open answers are written by people (`open_answers.jsonl`: text + the rating band it was written for);
this script only lays them out as two survey platforms export them, around answers whose ratings follow
one satisfaction level per respondent, and plants invalid submissions of every kind the cleaning rules
catch (too fast, straight-lining, duplicate submissions, empty questionnaires, an unreadable answer).

    python data_samples/surveys/make_samples.py
"""
from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
LABELS = ["非常不满意", "不满意", "一般", "满意", "非常满意"]
WJX_QUESTIONS = [
    "1、您对客服人员的服务态度是否满意？",
    "2、您对问题响应和处理的及时性是否满意？",
    "3、您对工作人员的专业能力（解答准确、一次解决）是否满意？",
    "4、您对业务办理流程的规范和便捷程度是否满意？",
    "5、总体而言，您对本次服务是否满意？",
]
WJX_NPS = "6、您有多大可能向亲友推荐我们的服务？（0-10分）"
WJX_TEXT = "7、您对我们的服务还有哪些意见或建议？"
CHANNELS = ["营业厅", "客服热线", "手机APP", "微信公众号"]
REGIONS = ["天河区", "越秀区", "海珠区", "白云区", "番禺区"]
SOURCES = [("微信", "朋友圈"), ("手机提交", "短信链接"), ("链接", "直接访问")]
CITIES = ["广东-广州", "广东-深圳", "广东-佛山", "湖南-长沙"]


def load_answers() -> dict[str, list[str]]:
    bands: dict[str, list[str]] = {"low": [], "mid": [], "high": []}
    for line in (HERE / "open_answers.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            bands[row["band"]].append(row["text"])
    return bands


def respondent_ratings(rng: random.Random) -> tuple[list[int], int]:
    """Four dimension ratings, an overall rating and a 0–10 score that follow one satisfaction level."""
    level = rng.choices([1.6, 2.6, 3.4, 4.1, 4.7], weights=[8, 12, 20, 35, 25])[0]
    dims = [min(5, max(1, round(rng.gauss(level, 0.7)))) for _ in range(4)]
    overall = min(5, max(1, round(sum(dims) / 4 + rng.gauss(0, 0.4))))
    nps = min(10, max(0, round(overall * 2 + rng.gauss(0, 1.2))))
    return dims + [overall], nps


def band_of(overall: int) -> str:
    return "low" if overall <= 2 else "mid" if overall == 3 else "high"


def pick_answer(rng: random.Random, answers: dict[str, list[str]], overall: int, used: dict[str, int]) -> str:
    """An open answer for this rating (most respondents leave it empty; each answer is used once)."""
    fill = {"low": 0.85, "mid": 0.6, "high": 0.3}[band_of(overall)]
    pool = answers[band_of(overall)]
    if rng.random() > fill or used[band_of(overall)] >= len(pool):
        return ""
    used[band_of(overall)] += 1
    return pool[used[band_of(overall)] - 1]


def wjx_rows(rng: random.Random, answers: dict[str, list[str]], n: int, start: datetime,
             used: dict[str, int]) -> list[list[str]]:
    rows = []
    t = start
    for i in range(1, n + 1):
        t += timedelta(seconds=rng.randint(60, 2400))
        ratings, nps = respondent_ratings(rng)
        seconds = rng.randint(45, 600)
        ip = f"{rng.randint(14, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        source = rng.choice(SOURCES)
        row = [str(i), t.strftime("%Y/%m/%d %H:%M:%S"), _wjx_seconds(seconds), source[0], source[1],
               f"{ip}({rng.choice(CITIES)})", *(LABELS[r - 1] for r in ratings), str(nps),
               pick_answer(rng, answers, ratings[-1], used) or "(跳过)", rng.choice(CHANNELS), rng.choice(REGIONS)]
        rows.append(row)
    plant_invalid(rng, rows)
    return rows


def _wjx_seconds(seconds: int) -> str:
    return f"{seconds}秒" if seconds < 60 or seconds % 3 else f"{seconds // 60}分{seconds % 60}秒"


def plant_invalid(rng: random.Random, rows: list[list[str]]) -> None:
    """Every kind of invalid submission, at realistic rates, in place (row numbers stay as exported)."""
    picks = rng.sample(range(len(rows)), 90)
    for k, i in enumerate(picks):
        row = rows[i]
        kind = k % 6
        if kind in (0, 1):  # filled in under 30 seconds
            row[2] = f"{rng.randint(8, 28)}秒"
        elif kind == 2:  # every question the top of the scale
            row[6:11] = ["非常满意"] * 5
        elif kind == 3:  # every question the bottom of the scale
            row[6:11] = ["非常不满意"] * 5
            row[11] = "0"
        elif kind == 4:  # submitted twice from one device within minutes
            if i + 1 < len(rows):
                twin = rows[i + 1]
                twin[5], twin[6:13] = row[5], row[6:13]
                t = datetime.strptime(row[1], "%Y/%m/%d %H:%M:%S") + timedelta(minutes=rng.randint(1, 4))
                twin[1] = t.strftime("%Y/%m/%d %H:%M:%S")
        else:  # an empty questionnaire
            row[6:13] = ["(跳过)"] * 7


def write_wjx(path: Path, rows: list[list[str]]) -> None:
    """问卷星's CSV download: GBK, a header of metadata and numbered questions."""
    header = ["序号", "提交答卷时间", "所用时间", "来源", "来源详情", "来自IP", *WJX_QUESTIONS, WJX_NPS, WJX_TEXT,
              "8、您最近一次办理业务的渠道", "9、您所在的区域"]
    with path.open("w", encoding="gb18030", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_tencent(path: Path, rng: random.Random, answers: dict[str, list[str]], n: int, start: datetime,
                  used: dict[str, int]) -> None:
    """腾讯问卷's XLSX download: numeric ratings, start and end times, 答题时长 as "2分5秒", a user id."""
    wb = Workbook()
    ws = wb.active
    ws.title = "答卷数据"
    ws.append(["编号", "用户ID", "开始答题时间", "结束答题时间", "答题时长", "Q1 服务态度满意度", "Q2 响应速度满意度",
               "Q3 专业能力满意度", "Q4 流程规范满意度", "Q5 整体满意度", "Q6 意见与建议", "门店"])
    t = start
    for i in range(1, n + 1):
        t += timedelta(seconds=rng.randint(120, 3000))
        ratings, _ = respondent_ratings(rng)
        seconds = rng.randint(40, 500)
        user = f"u{rng.randint(10**7, 10**8 - 1)}"
        row = [i, user, t, t + timedelta(seconds=seconds), f"{seconds // 60}分{seconds % 60}秒", *ratings,
               pick_answer(rng, answers, ratings[-1], used), rng.choice(["北京路店", "江南西店", "体育西店"])]
        if i % 97 == 0:  # the same user submitting again
            row[1] = ws.cell(ws.max_row, 2).value
        if i % 131 == 0:
            row[4] = "18秒"
        if i % 149 == 0:
            row[5:10] = [5, 5, 5, 5, 5]
        if i == 200:
            row[7] = "很好"  # not a 1–5 number: the row is reported, not guessed
        ws.append(row)
    wb.save(path)


def main() -> None:
    answers = load_answers()
    rng = random.Random(20261101)
    used = {"low": 0, "mid": 0, "high": 0}  # each written answer appears once across all the files
    write_wjx(HERE / "survey_wjx_2026-11.csv", wjx_rows(rng, answers, 1040, datetime(2026, 11, 1, 9), used))
    write_tencent(HERE / "survey_tencent_2026-11.xlsx", rng, answers, 400, datetime(2026, 11, 3, 8), used)
    write_wjx(HERE / "survey_wjx_2026-10.csv", wjx_rows(rng, answers, 520, datetime(2026, 10, 1, 9), used))
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("survey_*"))))


if __name__ == "__main__":
    main()
