"""Task arguments arrive as lists in this project's DAGs and as rendered text in DAGs without native rendering."""

import pytest

from segment_rudderstack.rendered import as_bool, as_list


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["a", "b"], ["a", "b"]),
        ('["a", "b"]', ["a", "b"]),
        ("['a', 'b']", ["a", "b"]),
        ("a, b", ["a", "b"]),
        ("None", None),
        ("", None),
        (None, None),
    ],
)
def test_as_list_never_splits_a_rendered_list_into_characters(value, expected):
    assert as_list(value) == expected


@pytest.mark.parametrize(("value", "expected"), [("True", True), ("false", False), (True, True), (0, False)])
def test_as_bool_reads_rendered_flags(value, expected):
    assert as_bool(value) is expected
