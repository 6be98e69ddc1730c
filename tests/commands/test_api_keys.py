"""API keys: their form, the `Authorization` header's parsing (fuzzed: nothing but a well-formed bearer key is
ever looked up), and the key never reaching a log line."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backend.redaction import redact
from commands.api_keys import KEY, KEY_PREFIX, ApiKeys, KeyRefused, key_digest, key_from_header
from commands.storage.voices import Member

ALICE = Member("slack", "T1", "U1")
A_KEY = KEY_PREFIX + "A" * 43
HEADER_TEXT = st.text(alphabet=st.characters(codec="latin-1"), max_size=200)


@settings(max_examples=500, deadline=None)
@given(HEADER_TEXT)
@example(f"Bearer {A_KEY}")
@example(f"bearer   {A_KEY}  ")
@example(f"Bearer {A_KEY}\x00")
@example(f"Bearer {A_KEY} {A_KEY}")
@example(f"Basic {A_KEY}")
@example(A_KEY)
def test_a_header_yields_a_well_formed_key_or_nothing(header):
    key = key_from_header(header)
    assert key is None or (KEY.fullmatch(key) and key in header and header.strip().lower().startswith("bearer "))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["Bearer", "bearer", "BEARER"]), st.sampled_from(["", " ", "\t"]),
       st.integers(min_value=1, max_value=3))
def test_every_issued_form_of_key_parses_back(scheme, padding, spaces):
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    assert key_from_header(f"{padding}{scheme}{' ' * spaces}{key}{padding}") == key


def test_a_key_is_long_random_and_recognisable():
    keys = {KEY_PREFIX + secrets.token_urlsafe(32) for _ in range(100)}
    assert len(keys) == 100 and all(KEY.fullmatch(key) for key in keys)
    assert key_digest(A_KEY) != key_digest(A_KEY[:-1] + "B") and len(key_digest(A_KEY)) == 64


class NoStorage:
    """Fails the test if anything is looked up."""

    def __getattr__(self, name: str):
        raise AssertionError(f"storage.{name} used for a key that is not well formed")


@pytest.mark.parametrize("key", [None, "", "vb_", "vb_" + "A" * 42, "vb_" + "A" * 44, "sk-" + "A" * 43,
                                 "vb_" + "A" * 42 + "="])
async def test_a_malformed_key_is_refused_without_a_lookup(key):
    with pytest.raises(KeyRefused):
        await ApiKeys(NoStorage(), None).holder(key)  # type: ignore[arg-type]


async def test_an_issued_key_is_redacted_from_every_log_line(storage):
    from commands.settings import CommandSettings

    keys = ApiKeys(storage, CommandSettings(_env_file=None, api_public_url="https://tts.example.org"))
    issued = await keys.issue(ALICE)
    assert issued.key not in redact(f"oops: {issued.key}") and issued.record.prefix in issued.key
    assert (await keys.holder(issued.key)).member == ALICE
