"""``task_headers``: names matched case-insensitively, precedence, empty values skipped."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from tokenomy.errors import InvalidRequest
from tokenomy.gateway.task_headers import task_headers


def _h(**pairs: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict((k.replace("_", "-"), v) for k, v in pairs.items()))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, ("", "")),
        ({"X_TOKENOMY_TASK": "t1"}, ("t1", "")),
        ({"x_tokenomy_task": "t2", "HELICONE_SESSION_ID": "h"}, ("t2", "")),
        ({"X_Tokenomy_Task": "", "Helicone_Session_Id": "h"}, ("h", "")),
        ({"X_LITELLM_TRACE_ID": "l", "x_tokenomy_parent_task": "p"}, ("l", "p")),
        ({"X_TOKENOMY_PARENT_TASK": "p"}, ("", "p")),
    ],
)
def test_task_and_parent_from_any_case(headers: dict[str, str], expected: tuple[str, str]) -> None:
    assert task_headers(_h(**headers)) == expected


def test_invalid_values_are_refused_with_the_canonical_name() -> None:
    with pytest.raises(InvalidRequest) as info:
        task_headers(_h(x_tokenomy_task="a\x00b"))
    assert "X-Tokenomy-Task" in info.value.message
    with pytest.raises(InvalidRequest) as info:
        task_headers(_h(x_tokenomy_parent_task="p" * 300))
    assert "X-Tokenomy-Parent-Task" in info.value.message
