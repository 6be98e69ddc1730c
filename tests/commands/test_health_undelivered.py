"""The health report lists results no route could deliver: the count, where they are, the newest few, redacted."""

from __future__ import annotations

from commands.health import NEWEST_UNDELIVERED, BotHealth, VariantHealth, health_fields
from commands.undelivered import UndeliveredStore
from tests.fakes import fake_health


def test_undelivered_results_make_the_report_say_problems(tmp_path) -> None:
    store = UndeliveredStore(tmp_path)
    for index in range(NEWEST_UNDELIVERED + 2):
        store.keep(f"J{index}AAAA", "discord:42", "discord:1/2", b"RIFF", f"follow-up: HTTP 401, try {index}")
    store.keep("JLEAKY", "slack:U1", "slack:T1/C1", b"RIFF", "upload to https://user:pw@files.example/x?token=abc")
    health = BotHealth([VariantHealth("fa2", fake_health("fa2"))], undelivered=store.entries())
    fields = dict(health_fields(health))
    assert not health.ok
    assert fields["Undelivered results"] == f"{NEWEST_UNDELIVERED + 3} kept in {tmp_path}, newest first"
    lines = fields["Newest undelivered"].splitlines()
    assert len(lines) == NEWEST_UNDELIVERED and lines[0].startswith("JLEAKY (JLEAKY.wav) for slack:U1 in slack:T1/C1")
    assert "pw" not in lines[0] and "token=abc" not in lines[0]


def test_none_kept_and_none_passed() -> None:
    variants = [VariantHealth("fa2", fake_health("fa2"))]
    assert dict(health_fields(BotHealth(variants, undelivered=[])))["Undelivered results"] == "none"
    assert BotHealth(variants, undelivered=[]).ok
    assert "Undelivered results" not in dict(health_fields(BotHealth(variants)))  # the caller keeps none
