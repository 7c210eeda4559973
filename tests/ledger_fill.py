"""A small ledger for the dashboard tests: real texts classified by a model, two months, a few hostile
texts (markup a browser would run if it were not escaped)."""
from __future__ import annotations

from datetime import datetime

from cxnlp.ledger.db import session_scope
from cxnlp.ledger.records import FeedbackIn, insert_records, record_rows, utcnow
from cxnlp.ledger.rules import LedgerRules
from cxnlp.prediction import predict_texts

MONTH, PREVIOUS = "2026-10", "2026-09"
XSS_TEXTS = ("<img src=x onerror=alert(1)>", "<script>alert(2)</script>客服态度太差了，还挂我电话",
             '"><svg onload=alert(3)>等了三天都没人处理')
XSS_CHANNEL = "<b onmouseover=alert(4)>渠道</b>"
TEXTS = (
    ("客服态度特别差，还挂我电话", "电话"),
    ("等了两个小时没人处理，太慢了", "在线客服"),
    ("快递三天了还没到，催了也没用", "app_review"),
    ("工作人员很耐心，问题很快解决了，谢谢", "电话"),
    ("流程太复杂了，来回跑了三次还要补材料", "微信"),
    ("客服什么都不懂，问了半天答非所问", "在线客服"),
    ("退款申请提交一周了一直没有处理", "app_review"),
    ("服务很好，态度热情", "微信"),
    ("打了十几个电话都没人接，态度还很冷漠", "电话"),
    ("说好的上门维修一直拖，拖了半个月", "电话"),
)


def fill(url: str, model, *, with_xss: bool = True) -> dict[str, list[int]]:
    """Records in ``MONTH`` (every text and the hostile ones) and ``PREVIOUS`` (half the texts);
    returns the ids created per month."""
    items, months = [], []
    for k, (text, channel) in enumerate(TEXTS):
        items.append(FeedbackIn(text=text, source_id=f"cur-{k}", channel=channel,
                                received_at=datetime(2026, 10, 3 + k, 9, 30)))
        months.append(MONTH)
        if k % 2 == 0:
            items.append(FeedbackIn(text=text, source_id=f"prev-{k}", channel=channel,
                                    received_at=datetime(2026, 9, 3 + k, 9, 30)))
            months.append(PREVIOUS)
    if with_xss:
        for k, text in enumerate(XSS_TEXTS):
            items.append(FeedbackIn(text=text, source_id=f"xss-{k}", channel=XSS_CHANNEL,
                                    received_at=datetime(2026, 10, 20, 8, k)))
            months.append(MONTH)
    predictions = predict_texts(model, [i.text for i in items])
    rows = record_rows(items=items, predictions=predictions, rules=LedgerRules.load(), now=utcnow())
    with session_scope(url) as session:
        created = insert_records(session=session, rows=rows)
    out: dict[str, list[int]] = {MONTH: [], PREVIOUS: []}
    for item, month in zip(items, months):
        out[month].append(created[item.source_id])
    return out
