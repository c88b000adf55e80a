"""One reader's name per statistic: the Data set tab, the Analysis tab and the paired figure say the same words."""
import pytest

from vizattn.statnames import ANALYSIS_COLUMNS, WHERE_COLUMNS, paired_name, statistic_name


@pytest.mark.parametrize("paired, rows_key", [
    ("query_independence.attention", "query_independence|head.context|attention"),
    ("unary_binary.unary (softmax self weight)", "unary_binary|head.context (softmax self weight)|unary"),
    ("unary_binary.binary (gate 1/(1+w))", "unary_binary|head.lesa (gate 1/(1+w))|binary"),
    ("coverage.loop1", "coverage|loop1"),
    ("psa.spatial saturated", "psa|head.psa|spatial|saturated"),
])
def test_a_paired_statistic_is_named_as_the_data_set_tab_names_its_rows(paired, rows_key):
    assert paired_name(paired) == statistic_name(rows_key)[1]
    assert "." not in paired_name(paired) and "|" not in paired_name(paired)


def test_named_values():
    assert paired_name("where.own_class") == WHERE_COLUMNS["own_class"]
    assert paired_name("unary_binary.unary (softmax self weight)") == ANALYSIS_COLUMNS["self"]
    assert paired_name("unary_binary.unary (gate 1/(1+w))") == ANALYSIS_COLUMNS["gate"]
    assert paired_name("something.new") == "something new"  # unknown: its own words, never an error
