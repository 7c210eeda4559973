"""Personal data masking (cxnlp.text.mask_personal_data): a table of written forms, false friends that
must stay untouched, and a Hypothesis property over generated personal data among Chinese words."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxnlp.text import mask_personal_data, personal_data_spans

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id18(first17: str) -> str:
    """An ID number with its GB 11643 check character."""
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def luhn(body: str) -> str:
    """``body`` with the Luhn check digit appended."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (1 if i % 2 else 2)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


ID_A = id18("11010119900307123")      # ends in a digit
ID_X = next(n for n in (id18(f"44030519851201{k:03d}") for k in range(1000)) if n.endswith("X"))
CARD16 = luhn("622202123456789")
CARD19 = luhn("621700123456789012")

# (written form, the secret that must not survive)
FORMS = [
    ("13812345678", "13812345678"),
    ("+8613812345678", "13812345678"),
    ("+86 138 1234 5678", "1234"),
    ("+86-138-1234-5678", "1234"),
    ("008613812345678", "13812345678"),
    ("0086 138 1234 5678", "1234"),
    ("(+86)13812345678", "13812345678"),
    ("138 1234 5678", "1234"),
    ("138-1234-5678", "1234"),
    ("138.1234.5678", "1234"),
    (fullwidth("13812345678"), fullwidth("1234")),
    ("021-62345678", "623456"),
    ("(021)62345678", "623456"),
    ("（021）62345678", "623456"),
    ("021 6234 5678", "6234"),
    ("0755-8888 6666", "8888"),
    (fullwidth("021-62345678"), fullwidth("623456")),
    (ID_A, ID_A[4:16]),
    (ID_X, ID_X[4:16]),
    (ID_X.lower(), ID_X[4:16]),
    (ID_A[:6] + " " + ID_A[6:14] + " " + ID_A[14:], ID_A[6:14]),
    (ID_A[:6] + "-" + ID_A[6:14] + "-" + ID_A[14:], ID_A[6:14]),
    ("110101900307123", "0101900307"),
    ("身份证110101199003071234", "199003071"),
    ("身份证号：11010119900307123X", "199003071"),
    (fullwidth(ID_A), fullwidth(ID_A[4:16])),
    (CARD16, CARD16[4:12]),
    (CARD19, CARD19[4:15]),
    (" ".join(CARD16[i:i + 4] for i in range(0, 16, 4)), CARD16[4:8]),
    ("-".join(CARD16[i:i + 4] for i in range(0, 16, 4)), CARD16[8:12]),
    ("卡号：6222 0212 3456 7890 123", "3456"),
    ("zhang@qq.com", "zhang"),
    ("zhang.san+1@example.com.cn", "hang.san"),
    ("zhang＠qq.com", "zhang"),
    ("QQ号12345678", "12345678"),
    ("qq：12345678", "12345678"),
    ("扣扣 987654321", "987654321"),
    ("微信号wxid_abc123", "abc123"),
    ("微信：zhang_san88", "san88"),
    ("vx: zhangsan88", "zhangsan88"),
    ("加我wx abc_12345", "12345"),
    ("WeChat ID: Zhang-San-01", "San"),
]


@pytest.mark.parametrize("form,secret", FORMS)
def test_each_written_form_is_masked_and_keeps_its_length(form, secret):
    text = f"客服态度很差，{form}，请尽快处理"
    masked = mask_personal_data(text)
    assert secret not in masked and secret.lower() not in masked.lower()
    assert len(masked) == len(text)
    assert masked.startswith("客服态度很差，") and masked.endswith("，请尽快处理")


def test_email_masking_keeps_the_chinese_in_front():
    text = "客服态度很差一直不回复请联系我的邮箱zhang@qq.com"
    assert mask_personal_data(text) == "客服态度很差一直不回复请联系我的邮箱z****@qq.com"


@pytest.mark.parametrize("text", [
    "订单号A123456789一直没发货",
    "2024-05-01下的单，2024/05/01 10:30到的",
    "花了¥1280，退款1,280.00元",
    "订单2025110312345678还没到",
    "打了12345热线，12315也打了",
    "客服电话400-800-1234一直占线",
    "运单号SF1234567890123",
    "评分3.5分，等了45分钟",
    "110101199003071236是随便写的",       # 18 digits: wrong ID check digit, fails Luhn, no ID keyword
    "6222021234567891",                  # 16 digits failing Luhn
    "微信支付扣了两次钱",
    "QQ音乐会员",
])
def test_what_is_not_personal_data_is_untouched(text):
    assert mask_personal_data(text) == text
    assert personal_data_spans(text) == []


# --- property: generated personal data among Chinese words --------------------------------------

WORDS = ["客服", "态度", "很差", "物流", "太慢", "退款", "一直", "没有", "回复", "请", "联系", "我", "谢谢",
         "前台", "房间", "隔音", "师傅", "上门", "安装", "投诉", "处理", "经理", "电话", "的"]
SEPS = ["", "，", "。", " ", "：", "、"]


def _variant(draw, digits: str, groups: tuple[int, ...]) -> str:
    sep = draw(st.sampled_from(["", " ", "-"]))
    parts, pos = [], 0
    for g in groups:
        parts.append(digits[pos:pos + g])
        pos += g
    text = sep.join(parts)
    return fullwidth(text) if draw(st.booleans()) and draw(st.booleans()) else text


@st.composite
def mobiles(draw):
    number = draw(st.sampled_from("3456789").map(lambda d: "1" + d)) + draw(st.text("0123456789", min_size=9, max_size=9))
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "86 "]))
    sep = draw(st.sampled_from(["", " ", "-", "."]))
    return prefix + sep.join([number[:3], number[3:7], number[7:]]), number


@st.composite
def landlines(draw):
    area = draw(st.sampled_from(["010", "021", "0755", "0571"]))
    local = draw(st.sampled_from("23456789")) + draw(st.text("0123456789", min_size=7, max_size=7))
    form = draw(st.sampled_from(["{a}-{l}", "({a}){l}", "（{a}）{l}", "{a} {l4} {l8}"]))
    return form.format(a=area, l=local, l4=local[:4], l8=local[4:]), local


@st.composite
def id_cards(draw):
    region = draw(st.sampled_from(["110101", "310104", "440305", "510107", "650102"]))
    year = draw(st.integers(1940, 2015))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    seq = draw(st.text("0123456789", min_size=3, max_size=3))
    if draw(st.integers(0, 4)) == 0:  # the old 15-digit form
        number = f"{region}{year % 100:02d}{month:02d}{day:02d}{seq}"
        return _variant(draw, number, (6, 6, 3)), number
    number = id18(f"{region}{year}{month:02d}{day:02d}{seq}")
    return _variant(draw, number, (6, 8, 4)), number


@st.composite
def bank_cards(draw):
    length = draw(st.integers(16, 19))
    body = draw(st.sampled_from(["62", "4", "5", "9"]))
    body += draw(st.text("0123456789", min_size=length - 1 - len(body), max_size=length - 1 - len(body)))
    number = luhn(body)
    return _variant(draw, number, tuple(len(number[i:i + 4]) for i in range(0, length, 4))), number


@st.composite
def emails(draw):
    local = draw(st.from_regex(r"[a-z][a-z0-9._]{2,12}[a-z0-9]", fullmatch=True))
    domain = draw(st.sampled_from(["qq.com", "163.com", "example.com.cn", "gmail.com"]))
    at = draw(st.sampled_from(["@", "＠"]))
    return f"{local}{at}{domain}", local


@st.composite
def chat_ids(draw):
    if draw(st.booleans()):
        number = draw(st.sampled_from("123456789")) + draw(st.text("0123456789", min_size=4, max_size=10))
        return draw(st.sampled_from(["QQ号", "QQ:", "qq ", "QQ号码：", "扣扣"])) + number, number
    wid = draw(st.from_regex(r"[a-z][a-z0-9_-]{5,18}[a-z0-9]", fullmatch=True))
    return draw(st.sampled_from(["微信号", "微信：", "vx:", "VX ", "wx：", "微信号是"])) + wid, wid


PII = st.one_of(mobiles(), landlines(), id_cards(), bank_cards(), emails(), chat_ids())
FILLER = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map("".join)


@st.composite
def texts_with_pii(draw):
    """(text, [(start, end, secret)]) with each piece of personal data between Chinese words."""
    parts, placed, pos = [], [], 0
    for _ in range(draw(st.integers(1, 4))):
        head = draw(FILLER) + draw(st.sampled_from(SEPS))
        written, secret = draw(PII)
        parts += [head, written]
        pos += len(head)
        placed.append((pos, pos + len(written), secret))
        pos += len(written)
    tail = draw(st.sampled_from(SEPS)) + draw(FILLER)
    parts.append(tail)
    return "".join(parts), placed


def _alnum(s: str) -> str:
    from cxnlp.text import normalize

    return re.sub(r"[^0-9a-z]", "", normalize(s))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts_with_pii())
def test_generated_personal_data_never_survives_and_nothing_else_changes(case):
    text, placed = case
    masked = mask_personal_data(text)
    assert len(masked) == len(text)
    for start, end, secret in placed:
        assert _alnum(secret) not in _alnum(masked[start:end]), (text, masked)
        assert text[start:end] not in masked, (text, masked)
        if len(secret) >= 11:  # long enough that no other piece's readable digits can spell it
            assert _alnum(secret) not in _alnum(masked), (text, masked)
    inside = {i for s, e, _ in placed for i in range(s, e)}
    assert all(masked[i] == text[i] for i in range(len(text)) if i not in inside), (text, masked)
