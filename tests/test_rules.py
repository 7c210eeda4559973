"""Severity cues match words, not substrings: every shipped cue word in a sentence that uses it, and
its false friends (inside a number, after a negation, inside another word, in praise)."""
from __future__ import annotations

import pytest

from cxnlp.ledger.cues import CueMatcher
from cxnlp.ledger.rules import LedgerRules

RULES = LedgerRules.load()
WORDS = {rule.level: rule.words for rule in RULES.severity}


def severity(text: str, negative: float = 0.9, categories: tuple[str, ...] = ()) -> str:
    return RULES.severity_of(text, list(categories), {"negative": negative, "neutral": 0.0, "positive": 1 - negative})


@pytest.mark.parametrize("level", ["重大", "中度"])
def test_every_cue_word_counts_as_a_word(level):
    assert WORDS[level], level
    for word in WORDS[level]:
        assert severity(f"等了好几天没人管，{word}，你们看着办", negative=0.6) == level, word


@pytest.mark.parametrize("text,negative,not_level", [
    ("订单号A123456789一直没发货", 0.75, "重大"),             # 12345 inside an order number
    ("快递单号1231500001查不到", 0.75, "重大"),               # 12315 inside a number
    ("我的工号是3123456，客服很耐心", 0.1, "重大"),
    ("12345热线的工作人员很负责，问题很快解决了", 0.02, "重大"),  # praise of the hotline
    ("感谢12315帮忙协调，问题解决了", 0.08, "重大"),
    ("幸好没有受伤，师傅处理得很及时", 0.3, "重大"),            # a negated safety word
    ("我从来不给差评，这次客服真的很好", 0.52, "中度"),          # a negated complaint word
    ("我不会投诉的，下次注意就好", 0.4, "中度"),
    ("客服说会给我赔偿，处理得很好", 0.23, "中度"),             # a complaint word in a content text
    ("多媒体教室的投影仪坏了", 0.8, "重大"),                  # 媒体 inside 多媒体
    ("我没有说要曝光，只是希望尽快处理", 0.6, "重大"),          # a negation before a verb of saying
    ("我从来没想要起诉", 0.6, "重大"),
    ("我不是要投诉，就是想问问媒体报道的那个事", 0.6, "重大"),  # "is not" before the cue; the media cited
    ("我不是要投诉，就是想问问媒体报道的那个事", 0.6, "中度"),
    ("我不是要曝光你们，只是希望尽快处理", 0.6, "重大"),
    ("并不是想起诉，只想退款", 0.6, "重大"),
    ("我并非要投诉，提个建议", 0.6, "中度"),
    ("我不是说要找律师，只是想问清楚", 0.6, "重大"),           # a threat verb between is no distance
    ("没有找媒体，只是发了个帖子", 0.6, "重大"),
    ("据媒体报道这个套餐要涨价了，是真的吗", 0.6, "重大"),       # the media cited, not threatened with
    ("看到媒体上说你们在升级网络，请问什么时候好", 0.6, "重大"),
    ("媒体报道过的那个漏洞修好了吗", 0.6, "重大"),
])
def test_false_friends_do_not_raise_severity(text, negative, not_level):
    assert severity(text, negative) != not_level


@pytest.mark.parametrize("text,level", [
    ("再不处理我就打12345投诉", "重大"),
    ("我已经打了12315", "重大"),
    ("孩子在店里受伤了", "重大"),
    ("真是气死我了，给差评", "中度"),
    ("不是第一次投诉了", "中度"),
    ("我不想再等了，我要投诉", "中度"),      # the negation stays in its own clause
    ("向市场监管局反映", "重大"),            # a cue at the head of a longer word
    ("再不处理我就要曝光", "重大"),          # 要 skipped, but the negation is too far back
    ("我要找媒体曝光", "重大"),
    ("再不处理我就找媒体", "重大"),          # 找 skipped, but the negation is too far back
    ("我要让媒体报道一下你们的服务", "重大"),  # 媒体报道 as a threat, not cited
    ("不是我说，你们再不处理我就报警", "重大"),
    ("我不是第一次找律师了，这次一定起诉", "重大"),
    ("不退款找律师", "重大"),                 # the negation is the refund's: 找 after it is a distance
    ("不解决找12345投诉", "重大"),
    ("我要找媒体说理", "重大"),               # 媒体说 here is a threat, no citation
    ("再不处理我就找媒体说说这事", "重大"),
])
def test_real_cues_still_count(text, level):
    assert severity(text) == level


def test_matcher_is_reusable_by_another_rule_family():
    urgent = CueMatcher(["马上", "立刻", "今天之内"])
    hits = urgent.find("请今天之内给我答复，不用马上回电")
    assert [(h.cue, h.start, h.end) for h in hits] == [("今天之内", 1, 5)]
    assert not urgent.matches("他立马上车走了")   # 马上 across 立马|上车 is no word here


def test_severities_of_a_batch_equal_one_by_one():
    texts = ["订单号A123456789一直没发货", "再不处理我就打12345投诉", "我从来不给差评，这次客服真的很好", "真是气死我了，给差评",
             "物流太慢", "孩子在店里受伤了", "向市场监管局反映"]
    cats = [["speed", "process"]] * len(texts)
    scores = [{"negative": n} for n in (0.75, 0.94, 0.52, 0.86, 0.9, 0.76, 0.8)]
    assert RULES.severities(texts, cats, scores) == [RULES.severity_of(t, c, s) for t, c, s in zip(texts, cats, scores)]
    assert RULES.severities(texts, cats, scores) == ["一般", "重大", "一般", "中度", "中度", "重大", "重大"]
