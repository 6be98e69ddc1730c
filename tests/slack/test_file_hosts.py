"""The bot token goes to Slack's file host and nowhere else, whatever a payload or `files.info` names.

Every entry point (@mention, the message shortcut, the /clone form) gets a file object whose URLs point to
`HostileHost`, a server on 127.0.0.1 that would happily serve a clip: the bot must look the file up by id and
never send that host a request, let alone the token.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from bot.slack.files import NOT_IN_SLACK, SLACK_FILE_ORIGINS, is_slack_file_url
from bot.slack.voice_forms import CHOOSE_CLONE
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import SlackHarness, event_request, form_values
from tests.slack.fake_slack import BOT_TOKEN, BOT_USER_ID, HostileHost

ENTRY_POINTS = ["mention", "shortcut", "form"]


@pytest.fixture
async def hostile() -> AsyncIterator[HostileHost]:
    host = await HostileHost(sine_clip()).start()
    yield host
    await host.close()


def hostile_file(hostile: HostileHost, file_id: str = "F0EVIL", **extra: Any) -> dict[str, Any]:
    """A file object as an attacker (or a confused integration) would put it in a payload."""
    return {"id": file_id, "name": "voice.wav", "mimetype": "audio/wav", "filetype": "wav", "size": 1000,
            "url_private": hostile.url(), "url_private_download": hostile.url() + "?download=1", **extra}


async def clone_via(h: SlackHarness, entry: str, file: dict[str, Any]) -> list[str]:
    """Ask for a clone through `entry` with `file` as the clip; everything the user was told."""
    told: list[str] = []
    if entry == "mention":
        event = {"type": "app_mention", "user": "U1", "text": f"<@{BOT_USER_ID}> Hello", "ts": "1.1",
                 "channel": "C1", "event_ts": "1.1", "files": [file]}
        await h.dispatch(event_request(event))
    elif entry == "shortcut":
        message = {"type": "message", "user": "U5", "ts": "1.2", "files": [file]}
        view = await h.choose(await h.shortcut(message, channel="C1"), CHOOSE_CLONE)
        response = await h.dispatch(h.submission(view, form_values("Hello")))
        told += list(json.loads(response.body)["errors"].values()) if response.body else []
    else:
        view = await h.open_form()
        response = await h.dispatch(h.submission(view, form_values("Hello", files=[file])))
        told += list(json.loads(response.body)["errors"].values()) if response.body else []
    await h.settle()
    told += [c.args["text"] for c in h.fake.of("chat.postEphemeral")] + [r["text"] for r in h.responses()]
    return told


def refusals(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == event]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_payload_urls_are_never_used(slack, hostile, entry):
    """The payload's file names a foreign host, but Slack's `files.info` knows the file: the clip comes from
    Slack, the foreign host gets nothing."""
    backend = FakeBackend()
    h = await slack(backend)
    h.fake.host_file("voice.wav", sine_clip(), file_id="F0EVIL")
    told = await clone_via(h, entry, hostile_file(hostile))
    assert not hostile.calls, told
    assert h.fake.of("files.info")[-1].args["file"] == "F0EVIL"
    (download,) = [c for c in h.fake.calls if c.path.startswith("/files-pri/")]
    assert download.auth == f"Bearer {BOT_TOKEN}"
    assert len(backend.calls) == 1 and h.fake.of("files.completeUploadExternal")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_files_info_naming_another_host_is_refused(slack, hostile, caplog, entry):
    backend = FakeBackend()
    h = await slack(backend)
    h.fake.host_file("voice.wav", sine_clip(), file_id="F0EVIL")
    h.fake.file_objects["F0EVIL"].update(url_private=hostile.url(), url_private_download=hostile.url())
    told = await clone_via(h, entry, {"id": "F0EVIL", "name": "voice.wav", "mimetype": "audio/wav"})
    assert not hostile.calls
    assert any(NOT_IN_SLACK in text for text in told), told
    assert not any("127.0.0.1" in text or "http" in text for text in told)  # no host or URL for users
    (refused,) = refusals(caplog, "slack.file_host_refused")
    assert refused["host"] == "127.0.0.1" and refused["url"] == hostile.url()
    assert not backend.calls and not h.fake.of("files.getUploadURLExternal")


@pytest.mark.parametrize("remote", [{"is_external": True, "external_type": "gdrive", "mode": "external"},
                                    {"mode": "external"}, {"is_external": True}])
async def test_remote_files_are_refused(slack, hostile, caplog, remote):
    """Remote files (`files.remote.add`, Google Drive links) live elsewhere even when a URL looks harmless."""
    h = await slack(FakeBackend())
    h.fake.host_file("voice.wav", sine_clip(), file_id="F0EVIL")
    h.fake.file_objects["F0EVIL"].update(remote)
    told = await clone_via(h, "mention", hostile_file(hostile, **remote))
    assert told == [f":x: {NOT_IN_SLACK}"]
    assert not hostile.calls and not [c for c in h.fake.calls if c.path.startswith("/files-pri/")]
    assert refusals(caplog, "slack.remote_file_refused")


async def test_a_redirect_to_another_host_is_refused_before_it_is_followed(slack, hostile, caplog):
    backend = FakeBackend()
    h = await slack(backend)
    clip = h.fake.host_file("voice.wav", sine_clip(), file_id="F0REF")
    h.fake.redirects[URL(clip["url_private"]).path] = hostile.url()
    told = await clone_via(h, "form", clip)
    assert told == [NOT_IN_SLACK]
    assert not hostile.calls  # neither the token nor a request
    assert refusals(caplog, "slack.file_host_refused")[0]["host"] == "127.0.0.1"
    assert not backend.calls


async def test_a_redirect_within_slacks_file_host_is_followed_with_the_token(slack):
    backend = FakeBackend()
    h = await slack(backend)
    clip = h.fake.host_file("voice.wav", sine_clip(), file_id="F0REF")
    moved = h.fake.host_file("moved.wav", sine_clip(), file_id="F0MOVED")
    h.fake.redirects[URL(clip["url_private"]).path] = moved["url_private"]
    assert await clone_via(h, "form", clip) == []
    downloads = [c for c in h.fake.calls if c.path.startswith("/files-pri/")]
    assert [c.path for c in downloads] == ["/files-pri/T1-F0REF/voice.wav", "/files-pri/T1-F0MOVED/moved.wav"]
    assert all(c.auth == f"Bearer {BOT_TOKEN}" for c in downloads)
    assert len(backend.calls) == 1


async def test_a_file_without_an_id_is_not_fetched(slack, hostile):
    h = await slack(FakeBackend())
    file = hostile_file(hostile)
    del file["id"]
    told = await clone_via(h, "form", file)
    assert told == ["Slack sent the file without its id; attach it again."]
    assert not hostile.calls and not h.fake.of("files.info")


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://files.slack.com/files-pri/T1-F1/voice.wav?download=1", True),
    ("https://FILES.slack.com:443/files-pri/T1-F1/voice.wav", True),
    ("http://files.slack.com/files-pri/T1-F1/voice.wav", False),  # HTTPS only
    ("https://files.slack.com:8443/files-pri/T1-F1/voice.wav", False),
    ("https://files.slack.com.example.com/files-pri/T1-F1/voice.wav", False),
    ("https://files.slack.com@example.com/files-pri/T1-F1/voice.wav", False),
    ("https://user:pw@files.slack.com/files-pri/T1-F1/voice.wav", False),
    ("https://example.com/files.slack.com/voice.wav", False),
    ("https://slack.com/files-pri/T1-F1/voice.wav", False),
    ("//files.slack.com/files-pri/T1-F1/voice.wav", False),
    ("/files-pri/T1-F1/voice.wav", False),
    ("ftp://files.slack.com/voice.wav", False),
    ("https://files.slack.com\\@example.com/", False),
    ("https://files.slack.com./files-pri/T1-F1/voice.wav", False),
    ("", False),
])
def test_only_slacks_file_host_over_https_is_allowed(url, allowed):
    assert SLACK_FILE_ORIGINS == ("https://files.slack.com",)
    assert is_slack_file_url(url) is allowed


@given(st.text(max_size=80).map(lambda tail: "https://" + tail) | st.text(max_size=80))
def test_an_allowed_url_is_always_on_slacks_file_host(url):
    if is_slack_file_url(url):
        parsed = URL(url)
        assert (parsed.scheme, parsed.host, parsed.port, parsed.user) == ("https", "files.slack.com", 443, None)
