"""Login and command sync: what discord.py sends to Discord for our command tree."""

from __future__ import annotations

from tests.discord.fake_api import APP_ID, GUILD_ID, TOKEN
from tests.fakes import FakeBackend


async def test_login_and_dev_guild_sync_payloads(discord_bot):
    bot = await discord_bot(FakeBackend())
    assert bot.bot.user.id and bot.bot.application_id == APP_ID
    paths = [c.path for c in bot.api.calls]
    assert paths[:2] == ["/api/v10/users/@me", "/api/v10/oauth2/applications/@me"]
    sync = await bot.api.wait_for(lambda c: c.method == "PUT")
    assert sync.path == f"/api/v10/applications/{APP_ID}/guilds/{GUILD_ID}/commands"
    assert sync.auth == f"Bot {TOKEN}"
    assert not [c for c in bot.api.calls if c.path == f"/api/v10/applications/{APP_ID}/commands"]  # no global

    commands = {c["name"]: c for c in sync.json}
    assert set(commands) == {"clone", "Clone this voice", "tts-health", "tts-check"}

    clone = commands["clone"]
    assert clone["type"] == 1
    options = {o["name"]: o for o in clone["options"]}
    assert list(options) == ["reference", "text", "ref_text", "language"]  # one backend: no variant option
    assert options["reference"]["type"] == 11 and options["reference"]["required"] is True
    assert options["text"]["type"] == 3 and options["text"]["required"] is True
    assert options["text"]["max_length"] == 5000  # VOICEBOT_MAX_TEXT_CHARS, enforced by the client too
    assert options["ref_text"]["max_length"] == 1000  # VOICEBOT_MAX_TRANSCRIPT_CHARS
    assert options["ref_text"]["required"] is False
    assert options["language"]["autocomplete"] is True and options["language"]["required"] is False
    assert all(o["description"] for o in clone["options"])

    assert commands["Clone this voice"]["type"] == 3  # message context menu
    health = commands["tts-health"]
    assert str(health["default_member_permissions"]) == "8"  # hidden from non-admins in the client


async def test_variant_option_only_with_several_variants(discord_bot):
    bot = await discord_bot({"fa2": FakeBackend("fa2"), "0.6b": FakeBackend("0.6b")})
    sync = await bot.api.wait_for(lambda c: c.method == "PUT")
    clone = next(c for c in sync.json if c["name"] == "clone")
    variant = next(o for o in clone["options"] if o["name"] == "variant")
    assert [c["value"] for c in variant["choices"]] == ["fa2", "0.6b"]
    assert variant["required"] is False


async def test_global_sync_on_request(discord_bot):
    bot = await discord_bot(FakeBackend(), sync_global=True, dev_guild=False)
    sync = await bot.api.wait_for(lambda c: c.method == "PUT")
    assert sync.path == f"/api/v10/applications/{APP_ID}/commands"
    assert {c["name"] for c in sync.json} == {"clone", "Clone this voice", "tts-health", "tts-check"}


async def test_no_sync_without_guild_or_request(discord_bot):
    bot = await discord_bot(FakeBackend(), dev_guild=False)
    assert not [c for c in bot.api.calls if c.method == "PUT"]


async def test_the_voice_library_commands(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    sync = await bot.api.wait_for(lambda c: c.method == "PUT")
    commands = {c["name"]: c for c in sync.json}
    assert set(commands) == {"clone", "Clone this voice", "tts-health", "tts-check", "voice", "say"}
    subcommands = {o["name"]: o for o in commands["voice"]["options"]}
    assert list(subcommands) == ["save", "list", "info", "delete", "rename", "forget-me", "api-key", "block",
                                 "unblock", "activity"]
    assert [c["value"] for c in subcommands["api-key"]["options"][0]["choices"]] == ["create", "revoke"]
    save = {o["name"]: o for o in subcommands["save"]["options"]}
    assert save["clip"]["type"] == 11 and save["clip"]["required"] is True
    assert [c["value"] for c in save["scope"]["choices"]] == ["me", "server"]
    for name in ("info", "delete", "rename"):
        assert subcommands[name]["options"][0]["autocomplete"] is True
    say = {o["name"]: o for o in commands["say"]["options"]}
    assert say["voice"]["autocomplete"] is True and say["language"]["autocomplete"] is True
    assert say["text"]["max_length"] == 5000
    assert all(o["description"] for sub in subcommands.values() for o in sub.get("options", []))
