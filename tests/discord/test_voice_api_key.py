"""`/voice api-key` on Discord: the key shown once, only to the caller (ephemeral), with the base URL, the model
and their voices; a new key replaces the old; `action:revoke` ends it; closed without the API's public URL;
forget-me deletes it and says so."""

from __future__ import annotations

import re

from commands.api_keys import key_digest
from tests.discord.fake_api import EPHEMERAL, Invoker
from tests.discord.test_voice import _member, save_voice
from tests.fakes import FakeBackend

PUBLIC_URL = "https://tts.example.org"
KEY = re.compile(r"vb_[A-Za-z0-9_-]{43}")


async def issue(bot, invoker: Invoker, **options) -> str:
    question = bot.voice("api-key", invoker, **options)
    assert (await bot.response(question)).json["data"]["flags"] == EPHEMERAL  # private from the first answer
    return await bot.answer(question, "API key" if options.get("action") != "revoke" else "key")


async def test_a_key_is_shown_once_privately_with_how_to_use_it(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True, api_public_url=PUBLIC_URL)
    alice = Invoker()
    await save_voice(bot, "Narrator", alice)
    text = await issue(bot, alice)
    (key,) = KEY.findall(text)
    assert f"`{PUBLIC_URL}/v1`" in text and "`qwen3-tts`" in text and "`Narrator`" in text
    holder = await bot.library.storage.api_keys.find(key_digest(key))
    assert holder.member == _member(alice) and key.startswith(holder.prefix)
    shown = [call for call in bot.api.calls if key in str(call.json)]
    assert shown and all("@original" in call.path for call in shown)  # only the caller's ephemeral answer

    (second,) = KEY.findall(await issue(bot, alice))
    assert second != key and await bot.library.storage.api_keys.find(key_digest(key)) is None
    revoked = await issue(bot, alice, action="revoke")
    assert "revoked" in revoked and await bot.library.storage.api_keys.find(key_digest(second)) is None


async def test_without_the_apis_public_url_no_key_is_issued(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    question = bot.voice("api-key", Invoker())
    assert await bot.answer(question, "API") == "This bot does not offer an API for its voices."


async def test_forget_me_deletes_the_key_and_counts_it(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True, api_public_url=PUBLIC_URL)
    alice = Invoker()
    (key,) = KEY.findall(await issue(bot, alice))
    question = bot.voice("forget-me", alice)
    click = await bot.click(question, "Forget me", alice)
    assert "API keys deleted: 1" in await bot.answer(click, "forgotten you")
    assert await bot.library.storage.api_keys.find(key_digest(key)) is None
