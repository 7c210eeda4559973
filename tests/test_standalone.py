"""The repository stands alone: nothing a user reads or runs points at files outside it."""
from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

OUTSIDE = re.compile(r"\.\./shared|shared/taxonomy|shared/eval")


def _user_facing_files() -> list:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    keep = (".md", ".py", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".json")
    return [ROOT / f for f in listed if f.endswith(keep) and f != "tests/test_standalone.py"
            and (ROOT / f).is_file()]


def test_no_pointer_outside_the_repository():
    files = _user_facing_files()
    assert any(f.name == "README.md" for f in files) and any(f.suffix == ".py" for f in files)
    found = [f"{f.relative_to(ROOT)}:{n}: {line.strip()}" for f in files
             for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
             if OUTSIDE.search(line)]
    assert found == []


def test_the_label_guide_is_in_the_repository_and_pointed_at():
    guide = ROOT / "docs" / "taxonomy.md"
    text = guide.read_text(encoding="utf-8")
    for label in ("`attitude`", "`speed`", "`expertise`", "`process`", "`negative`", "`neutral`", "`positive`"):
        assert label in text
    # the boundary rules: questions and requests, polite problem reports, system failures,
    # mis-selling and broken promises, records written by agents
    for needle in ("请问保修期多久", "少送了一份，麻烦处理一下", "验证码一直收不到", "虚假宣传", "客户来电反映"):
        assert needle in text
    for page in ("README.md", "models/default/README.md", "data_samples/README.md"):
        assert "docs/taxonomy.md" in (ROOT / page).read_text(encoding="utf-8"), page
