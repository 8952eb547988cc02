"""Issue 18's suite: kills, the CLI and Python API bad-input corpora, damaged files, full and read-only disks, search
kills, playground limits. The default ``pytest`` runs the quick subset (each case marked quick, < 60 s here);
``TRAINLAB_RELIABILITY=full python -m pytest tests/reliability`` runs every case, as ``python
benchmarks/reliability.py`` does (that one prints the table of cases tried, held and fallen short per category)."""
from __future__ import annotations

from collections import Counter

import pytest

from tests.reliability.cases import ISSUE_CASES, all_cases
from tests.reliability.harness import Skip, full_mode

CASES = all_cases()
SELECTED = [c for c in CASES if full_mode() or c.quick]


@pytest.mark.parametrize("case", SELECTED, ids=lambda c: c.id)
def test_case(case, tmp_path):
    try:
        case.run(tmp_path)
    except Skip as why:
        pytest.skip(str(why))


def test_the_corpus_is_as_large_as_the_issue_asks():
    counts = Counter(c.category for c in CASES)
    assert counts["kills"] >= 20 and counts["cli"] >= 150 and counts["api"] >= 40, counts
    assert all(counts[c] for c in ("files", "disk", "search", "playground")), counts
    assert len({c.id for c in CASES}) == len(CASES), "two cases share an id"


def test_every_case_issue_18_lists_is_a_case_of_the_suite():
    ids = {c.id for c in CASES}
    missing = {bullet: [i for i in wanted if i not in ids] for bullet, wanted in ISSUE_CASES.items()}
    assert not {k: v for k, v in missing.items() if v}, missing


def test_every_category_has_quick_cases():
    assert {c.category for c in CASES if c.quick} == {c.category for c in CASES}
