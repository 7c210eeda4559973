from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cxnlp import text
from cxnlp.text import mask, normalize, tokenize_spans


def words(text_: str, backend: str = "jieba-rs") -> list[str]:
    return [t.term for t in tokenize_spans(text_, backend=backend)]


def test_normalize_keeps_length_and_maps_characters():
    raw = "態度很差！！ＡＢＣ　客服ＯＫ，“好”"
    out = normalize(raw)
    assert len(out) == len(raw)
    assert out == '态度很差!!abc 客服ok,"好"'


def test_traditional_and_simplified_tokenize_alike():
    assert words("前台態度很差，還掛我電話") == words("前台态度很差，还挂我电话")


def test_mask_replaces_numbers_and_personal_data():
    masked = mask("订单号2025110312345678 电话13912345678 邮箱a.b@qq.com 网址https://x.cn/a 工单GD20260412-0087 等了20分钟")
    assert "2025110312345678" not in masked and "13912345678" not in masked
    for placeholder in ("idnumx", "phonex", "emailx", "urlx"):
        assert placeholder in masked
    assert "20分钟" in masked  # short numbers carry meaning (等了20分钟) and stay


def test_token_spans_point_into_the_original_text():
    raw = "客服態度差，電話13912345678打了三遍"
    for tok in tokenize_spans(raw):
        if tok.term == "phonex":
            assert raw[tok.start:tok.end] == "13912345678"
        else:
            assert normalize(raw[tok.start:tok.end]) == tok.term


@pytest.mark.parametrize("backend", ["jieba-rs", "jieba"])
def test_user_dictionary_keeps_domain_words_whole(backend):
    found = words("打了三次电话转人工，客服一直踢皮球，工单也没人跟进", backend)
    assert {"转人工", "踢皮球", "工单"} <= set(found)


def test_single_character_words_are_kept():
    assert "差" in words("太差")


def test_cache_dir_falls_back_when_home_is_read_only(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(stat.S_IRUSR | stat.S_IXUSR)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CXNLP_CACHE_DIR", raising=False)
    from cxnlp.settings import get_settings

    get_settings.cache_clear()
    try:
        path = text.default_cache_dir()
        probe = path / "probe"
        probe.write_text("x")  # the folder chosen is writable
        probe.unlink()
        if os.geteuid() != 0:  # root can write anywhere, so only a normal user sees the fallback
            assert not str(path).startswith(str(home))
    finally:
        home.chmod(stat.S_IRWXU)
        get_settings.cache_clear()


def test_cache_dir_setting_is_used(tmp_path, monkeypatch):
    from cxnlp.settings import get_settings

    monkeypatch.setenv("CXNLP_CACHE_DIR", str(tmp_path / "jieba"))
    get_settings.cache_clear()
    try:
        assert text.default_cache_dir() == Path(tmp_path / "jieba")
    finally:
        get_settings.cache_clear()


def test_jieba_is_initialized_once_across_threads(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(text, "_JIEBA", {})
    with ThreadPoolExecutor(8) as pool:
        tokenizers = list(pool.map(lambda _: text.jieba_tokenizer(), range(16)))
        results = list(pool.map(words, ["客服态度很差"] * 16))
    assert len({id(t) for t in tokenizers}) == 1
    assert all(r == results[0] for r in results)


def test_both_backends_segment_alike():
    text_ = "前台小姐态度很好，办理入住很快，就是房间隔音差，退押金等了半小时"
    assert words(text_, "jieba-rs") == words(text_, "jieba")


def test_personal_data_is_masked_before_storage():
    from cxnlp.text import mask_personal_data

    masked = mask_personal_data("电话13912345678，座机021-62345678，身份证110101199003071234，邮箱zhang.san@qq.com，"
                                "银行卡：6222021234567890123，订单2025110312345678")
    for secret in ("13912345678", "62345678", "110101199003071234", "zhang.san", "6222021234567890123"):
        assert secret not in masked
    assert "139****5678" in masked and "@qq.com" in masked
    assert "2025110312345678" in masked  # an order number is not personal data: it stays traceable
