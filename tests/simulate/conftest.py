from __future__ import annotations

import pytest

from tokenomy.metering import tokenizer


@pytest.fixture(autouse=True, scope="session")
def _tokenizer_loaded() -> None:
    """The simulated factory counts prompts with the offline tokenizer: load it once, up front
    (the gateway loads it in the background at start-up; a first call would wait for it)."""
    tokenizer.warm_up()
