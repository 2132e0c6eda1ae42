"""ingest.safe_json: depth bounded before parsing, unstorable strings named by their path."""

from __future__ import annotations

import pytest

from shopflow.ingest import safe_json


def test_depth_at_the_bound_parses_and_one_more_is_refused() -> None:
    assert safe_json.loads("[" * 32 + "]" * 32) is not None
    with pytest.raises(safe_json.JsonError, match=r"^body(\[0\]){32}: nested deeper than 32 levels$"):
        safe_json.loads("[" * 33 + "]" * 33)


def test_a_million_brackets_never_reach_the_parser() -> None:
    with pytest.raises(safe_json.JsonError, match="nested deeper than 32 levels"):
        safe_json.loads("[" * 1_000_000)


def test_brackets_inside_strings_do_not_count() -> None:
    text = '{"a": "' + "[{" * 100 + '", "b": ["\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]}'
    assert safe_json.loads(text)["b"][0].startswith('"[[')


def test_the_path_names_keys_and_indexes() -> None:
    text = '{"x": [1, {"y": ' + '{"z": ' * 40 + "1" + "}" * 41 + "]}"
    with pytest.raises(safe_json.JsonError) as caught:
        safe_json.loads(text)
    assert str(caught.value) == "x[1].y" + ".z" * 29 + ": nested deeper than 32 levels"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"a": ["ok", "b\\u0000"]}', "a[1]: contains a NUL character"),
        ('{"k\\u0000": 1}', 'body: key "k\\u0000" contains a NUL character'),
        ('"\\udfff"', "body: contains a lone surrogate"),
        ('{"a": {"b": "\\ud83d"}}', "a.b: contains a lone surrogate"),
    ],
)
def test_unstorable_strings(text: str, error: str) -> None:
    with pytest.raises(safe_json.JsonError) as caught:
        safe_json.loads(text)
    assert str(caught.value).startswith(error)


def test_storable_escapes_and_malformed_input() -> None:
    assert safe_json.loads('["\\ud83d\\ude00", "\\\\u0000"]') == ["\U0001f600", "\\u0000"]
    with pytest.raises(ValueError, match="Expecting"):
        safe_json.loads("[" * 10 + "}" * 40)
    with pytest.raises(UnicodeDecodeError):
        safe_json.loads(b'["\xed\xa0\x80"]')
