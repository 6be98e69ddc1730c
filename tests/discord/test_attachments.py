"""Reference clips come from Discord's CDN only: another host, a redirect off the CDN, an oversized or stalled
body are refused with a message that names no host, and the hostile host never sees a request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.discord.attachments import DISCORD_CDN_ORIGINS, REFUSED, AttachmentRefused, DiscordCdn, DownloadFailed
from bot.discord.client import VoicebotClient
from commands.clone import CloneService
from tests.clips import sine_clip
from tests.discord.fake_api import (
    APPLICATION_COMMAND,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    FakeDiscord,
    followup_of,
    message_command,
    message_payload,
    snowflake,
    user_payload,
)
from tests.fakes import FakeBackend

CLIP = sine_clip(3.0)


@pytest.fixture
async def hostile() -> AsyncIterator[FakeDiscord]:
    """Another server on 127.0.0.1 (another port): serves clips too, and records whatever reaches it."""
    server = FakeDiscord()
    await server.start()
    yield server
    await server.stop()


def refusals(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [r.msg for r in caplog.records
            if isinstance(r.msg, dict) and r.msg.get("event") == "discord.attachment_refused"]


# -- the policy -----------------------------------------------------------------------------------------------
def test_the_product_allows_discords_cdn_over_https_only():
    assert VoicebotClient(CloneService(FakeBackend())).cdn.origins == DISCORD_CDN_ORIGINS
    cdn = DiscordCdn()
    for good in ("https://cdn.discordapp.com/attachments/1/2/voice.ogg?ex=6&is=6&hm=ab",
                 "https://media.discordapp.net/attachments/1/2/clip.wav", "https://CDN.discordapp.com:443/a.wav"):
        cdn.check(good)
    for bad in ("http://cdn.discordapp.com/attachments/1/2/a.wav",  # no TLS
                "https://cdn.discordapp.com:8443/a.wav",
                "https://cdn.discordapp.com.evil.example/a.wav",
                "https://evil.example/cdn.discordapp.com/a.wav",
                "https://user:pw@cdn.discordapp.com/a.wav",
                "https://cdn.discordapp.com\\@evil.example/a.wav",
                "https://discordapp.com/a.wav",
                "http://127.0.0.1:8080/a.wav", "file:///etc/passwd", "//cdn.discordapp.com/a.wav", "not a url", ""):
        with pytest.raises(AttachmentRefused):
            cdn.check(bad)


URL_PARTS = st.sampled_from(["https://", "http://", "//", "cdn.discordapp.com", "media.discordapp.net", "evil.example",
                             "@", ":", ":443", ":8443", "\\", "/", "?", "#", ".", "%2e", "%40", "\u0441", "\x00", " "])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(), st.lists(URL_PARTS, max_size=8).map("".join)))
def test_the_check_refuses_everything_but_the_cdn_and_never_crashes(url):
    """Whatever an interaction's attachment URL holds: refused, or HTTPS on a CDN host with no credentials."""
    try:
        DiscordCdn().check(url)
    except AttachmentRefused:
        return
    parsed = httpx.URL(url)
    assert parsed.scheme == "https" and parsed.host in ("cdn.discordapp.com", "media.discordapp.net")
    assert parsed.port is None and not parsed.userinfo


# -- /clone and the message menu -----------------------------------------------------------------------------
async def test_attachment_on_another_host_is_refused_before_any_request(discord_bot, hostile, caplog):
    backend = FakeBackend()
    bot = await discord_bot(backend)
    attachment = hostile.attachment(CLIP)  # the payload's url and proxy_url point at the hostile host
    response = await bot.response(bot.clone(attachment, "hello"))
    assert response.json["type"] == CHANNEL_MESSAGE and response.flags == EPHEMERAL
    assert response.content == REFUSED and "127.0.0.1" not in response.content
    assert hostile.calls == [] and backend.calls == []
    [logged] = refusals(caplog)
    assert logged["host"] == "127.0.0.1" and logged["url"] == attachment["url"]  # no query to drop here
    assert logged["level"] == "warning"


async def test_message_menu_refuses_a_foreign_attachment_before_asking_for_text(discord_bot, hostile):
    bot = await discord_bot(FakeBackend())
    target = message_payload(snowflake(), "", author=user_payload(snowflake(), "bob"),
                             attachments=[hostile.attachment(CLIP, "voice.ogg", "audio/ogg")])
    response = await bot.response(bot.send(APPLICATION_COMMAND, message_command("Clone this voice", target)))
    assert response.json["type"] == CHANNEL_MESSAGE and response.flags == EPHEMERAL
    assert response.content == REFUSED
    assert hostile.calls == []


async def test_redirect_off_the_cdn_is_not_followed(discord_bot, hostile, caplog):
    backend = FakeBackend()
    bot = await discord_bot(backend)
    target = hostile.attachment(CLIP)
    attachment = bot.attachment(CLIP, redirect_to=target["url"] + "?token=s3cret-query")
    payload = bot.clone(attachment, "hello")
    assert (await bot.response(payload)).json["type"] == DEFERRED_CHANNEL_MESSAGE
    followup = await bot.api.wait_for(lambda c: followup_of(payload)(c) and c.flags == EPHEMERAL)
    assert followup.content == REFUSED
    assert hostile.calls == [] and backend.calls == []
    [logged] = refusals(caplog)
    assert logged["url"] == target["url"]  # redacted: the query is gone


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_abandoned_whatever_the_attachment_claims(discord_bot, chunked):
    backend = FakeBackend()
    bot = await discord_bot(backend, max_ref_mib=1)
    attachment = bot.attachment(b"\0" * (3 * 1024 * 1024), size=1000, chunked=chunked)  # claims 1000 bytes
    payload = bot.clone(attachment, "hello")
    followup = await bot.api.wait_for(lambda c: followup_of(payload)(c) and c.flags == EPHEMERAL)
    assert followup.content == "The reference clip is over the 1 MiB limit; send a shorter clip."
    assert backend.calls == []


async def test_a_clip_redirected_within_the_cdn_arrives(discord_bot):
    backend = FakeBackend()
    bot = await discord_bot(backend)
    final = bot.attachment(CLIP)
    attachment = bot.attachment(b"", size=len(CLIP), redirect_to=final["url"])
    followup = await bot.api.wait_for(followup_of(bot.clone(attachment, "hello")))
    assert followup.files and len(backend.calls) == 1


# -- the download itself -------------------------------------------------------------------------------------
async def test_a_stalled_cdn_hits_the_deadline(caplog):
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        await response.prepare(request)
        await response.write(b"RIFF")  # then nothing: headers sent, the body never ends
        await release.wait()  # never, while the bot waits
        return response

    app = web.Application()
    app.router.add_get("/clip.wav", stall)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        with pytest.raises(DownloadFailed) as failed, caplog.at_level(logging.WARNING):
            await DiscordCdn(origins=(base,), timeout_s=0.2).download(f"{base}/clip.wav?hm=sig", 1024)
    finally:
        release.set()
        await runner.cleanup()
    assert failed.value.message == "Downloading the reference clip from Discord took too long; please try again."
    assert failed.value.detail == f"no complete answer within 0.2 s from {base}/clip.wav"
