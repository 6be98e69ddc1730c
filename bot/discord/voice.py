"""`/voice save|list|info|delete|rename|forget-me|api-key|block|unblock|activity` and `/say`: the voice library on
Discord.

Every answer but `/say`'s audio is private (ephemeral). Commands that touch the database acknowledge first
("thinking"), because a database under load may take longer than Discord's 3 s window, then replace the
placeholder with the outcome or the failure's own message. `block`, `unblock` and `activity` check on the server
that the caller is an admin (`bot.discord.identity.admins_only`), and the use cases check it again. `delete` with
an `owner` and `list` with a `user` are open to everyone (their plain forms are not admin commands): the admin
check for those options is the use case's, with the rights Discord reports in the interaction.
"""

# No `from __future__ import annotations`: discord.py reads option types (Range[str, 1, N] with N from the
# settings) from the callbacks' annotations, evaluated where the callbacks are defined.

from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from bot.discord.answers import answer_privately
from bot.discord.calls import within
from bot.discord.clone import OPTION_MAX_CHARS, complete_language
from bot.discord.confirm import Confirm
from bot.discord.identity import admins_only, caller_is_admin, member_of, place_of
from bot.discord.job_flow import run_job
from bot.discord.progress import JobProgress
from bot.discord.voice_save import offer_save
from bot.discord.voice_text import (
    activity_embed,
    choice_label,
    member_voices_embed,
    mention,
    voice_embed,
    voices_embed,
)
from commands.api_keys import ApiKeys, usage_text
from commands.clone import CloneService
from commands.jobs import Job
from commands.voice_library import VoiceLibrary

NAME_OPTION_CHARS = 100  # longer names are still refused with the naming rule, not by Discord's generic error
CONFIRM_TIMEOUT_S = 5 * 60.0
FORGET_QUESTION = (
    "**Forget me?** This deletes, on this bot and in every server: your saved voices and their reference clips, "
    "the record of what you generated, your queued and running jobs, results kept for you, and the backend's "
    "cached copy of your voices. It cannot be undone.")

Name = app_commands.Range[str, 1, NAME_OPTION_CHARS]


def voice_completer(library: VoiceLibrary) -> Callable[..., Awaitable[list[app_commands.Choice[str]]]]:
    """Autocomplete for voice names: the member's own voices, then the server's, matching what was typed; when
    the command's `owner` option is filled in (an admin's takedown), that member's voices instead. Discord sends
    no resolved users with an autocomplete, so `owner` arrives as a bare id (`discord.Object`)."""

    async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        member, owner = member_of(interaction), getattr(interaction.namespace, "owner", None)
        if owner is None:
            voices = await library.autocomplete(member, current)
        else:
            voices = await library.autocomplete(member, current, owner_id=str(owner.id),
                                                is_admin=caller_is_admin(interaction, library.settings))
        return [app_commands.Choice(name=f"{v.name} ({choice_label(v, member)})", value=v.name) for v in voices[:25]]

    return complete


def _escape(name: str) -> str:
    return discord.utils.escape_markdown(name)


def voice_group(library: VoiceLibrary) -> app_commands.Group:
    settings = library.settings
    group = app_commands.Group(name="voice", description="Save voices once and speak with them by name",
                               guild_only=False)

    complete_voice = voice_completer(library)

    @group.command(name="save", description="Save a voice from a reference clip (you confirm consent next)")
    @app_commands.describe(name="What to call the voice (letters, digits, spaces, - _ . ')",
                           clip="A few seconds (1-30 s) of the voice: WAV, MP3, OGG, M4A, FLAC or WebM",
                           transcript="What is said in the clip (optional; makes the voice closer)",
                           scope="Only you (default), or everyone in this server")
    @app_commands.choices(scope=[app_commands.Choice(name="only me", value="me"),
                                 app_commands.Choice(name="this server", value="server")])
    async def save(interaction: discord.Interaction, name: Name, clip: discord.Attachment,
                   transcript: app_commands.Range[str, 1, OPTION_MAX_CHARS] | None = None,
                   scope: str = "me") -> None:
        await offer_save(interaction, library, name=name, scope=scope, reference=clip, transcript=transcript)

    @group.command(name="list", description="The voices you can use: yours, then this server's (admins: a member's)")
    @app_commands.describe(user="Admins: every voice this member saved in this server, private ones included")
    async def list_voices(interaction: discord.Interaction, user: discord.User | None = None) -> None:
        member, admin = member_of(interaction), caller_is_admin(interaction, settings)

        async def work() -> dict[str, Any]:
            if user is None:
                return {"embed": voices_embed(await library.voices(member), member)}
            return {"embed": member_voices_embed(await library.voices_of(member, str(user.id), is_admin=admin),
                                                 str(user.id))}

        await answer_privately(interaction, work)

    @group.command(name="info", description="Who saved a voice, when, with what consent, and how often it was used")
    @app_commands.describe(name="The voice")
    @app_commands.autocomplete(name=complete_voice)
    async def info(interaction: discord.Interaction, name: Name) -> None:
        member = member_of(interaction)

        async def work() -> dict[str, Any]:
            return {"embed": voice_embed(await library.info(member, name))}

        await answer_privately(interaction, work)

    @group.command(name="delete", description="Delete one of your voices (admins: any voice saved in this server)")
    @app_commands.describe(name="The voice", owner="Admins: the member who saved it (takes down private voices too)")
    @app_commands.autocomplete(name=complete_voice)
    async def delete(interaction: discord.Interaction, name: Name, owner: discord.User | None = None) -> None:
        member, admin = member_of(interaction), caller_is_admin(interaction, settings)

        async def work() -> dict[str, Any]:
            voice = await library.delete(member, name, is_admin=admin, owner_id=str(owner.id) if owner else None)
            if voice.owner == member:
                return {"content": f"Deleted the voice “{_escape(voice.name)}”."}
            return {"content": f"Took down the voice “{_escape(voice.name)}” of {mention(voice.owner.user_id)}. "
                               "They are not told; the bot's log records that you did it."}

        await answer_privately(interaction, work)

    @group.command(name="rename", description="Rename one of your voices (admins: any server voice)")
    @app_commands.describe(name="The voice", new_name="Its new name")
    @app_commands.autocomplete(name=complete_voice)
    async def rename(interaction: discord.Interaction, name: Name, new_name: Name) -> None:
        member, admin = member_of(interaction), caller_is_admin(interaction, settings)

        async def work() -> dict[str, Any]:
            voice = await library.rename(member, name, new_name, is_admin=admin)
            return {"content": f"Renamed: the voice is now called “{_escape(voice.name)}”."}

        await answer_privately(interaction, work)

    @group.command(name="forget-me", description="Delete every voice, clip and record the bot keeps about you")
    async def forget_me(interaction: discord.Interaction) -> None:
        async def forget(answer: discord.Interaction) -> str:
            member = member_of(answer)
            playback = answer.client.playback  # type: ignore[attr-defined]  # None without voice playback
            stopped = await playback.forget(member.key) if playback is not None else 0
            report = await library.forget_me(member)
            spoken = f"\nSpeeches stopped in voice channels: {stopped}" if stopped else ""
            return "Done: the bot has forgotten you.\n" + _escape(report.summary()) + spoken

        async def keep(answer: discord.Interaction) -> str:
            return "Nothing was deleted."

        view = Confirm(interaction.user.id, FORGET_QUESTION, yes="Forget me", no="Cancel", on_yes=forget, on_no=keep,
                       timeout_s=CONFIRM_TIMEOUT_S, danger=True)
        await within(interaction.client.timing.call_s,  # type: ignore[attr-defined]
                     interaction.response.send_message(FORGET_QUESTION, view=view, ephemeral=True))

    keys = ApiKeys(library.storage, settings)

    @group.command(name="api-key", description="A key for the OpenAI-compatible API: your voices from your own "
                                               "code (shown once, only to you)")
    @app_commands.describe(action="Create a new key (replaces your key here), or revoke it")
    @app_commands.choices(action=[app_commands.Choice(name="create a new key", value="create"),
                                  app_commands.Choice(name="revoke my key", value="revoke")])
    async def api_key(interaction: discord.Interaction, action: str = "create") -> None:
        member = member_of(interaction)

        async def work() -> dict[str, Any]:
            if action == "revoke":
                revoked = await keys.revoke(member)
                return {"content": "Your API key for this server is revoked: it no longer works." if revoked
                        else "You have no API key in this server."}
            issued = await keys.issue(member)
            names = [_escape(voice.name) for voice in await library.voices(member)]
            return {"content": usage_text(issued, names)}

        await answer_privately(interaction, work)

    @group.command(name="block", description="Stop a member from saving or using voices here (admins only)")
    @app_commands.describe(user="The member", reason="Why (kept with the block)")
    @app_commands.check(admins_only(settings))
    async def block(interaction: discord.Interaction, user: discord.User,
                    reason: app_commands.Range[str, 0, 200] = "") -> None:
        member, admin = member_of(interaction), caller_is_admin(interaction, settings)

        async def work() -> dict[str, Any]:
            await library.block(member, str(user.id), is_admin=admin, reason=reason)
            return {"content": f"{user.mention} can no longer save or use voices in this server. Their voices stay "
                               "until they or an admin delete them; `/voice unblock` lifts the block."}

        await answer_privately(interaction, work)

    @group.command(name="unblock", description="Let a blocked member use voices again (admins only)")
    @app_commands.describe(user="The member")
    @app_commands.check(admins_only(settings))
    async def unblock(interaction: discord.Interaction, user: discord.User) -> None:
        member, admin = member_of(interaction), caller_is_admin(interaction, settings)

        async def work() -> dict[str, Any]:
            lifted = await library.unblock(member, str(user.id), is_admin=admin)
            return {"content": f"{user.mention} may use voices again." if lifted
                    else f"{user.mention} was not blocked."}

        await answer_privately(interaction, work)

    @group.command(name="activity", description="Who generated what, with which voice, recently (admins only)")
    @app_commands.describe(limit="How many entries (newest first)", user="Only this member's")
    @app_commands.check(admins_only(settings))
    async def activity(interaction: discord.Interaction, limit: app_commands.Range[int, 1, 50] = 15,
                       user: discord.User | None = None) -> None:
        member, admin = member_of(interaction), caller_is_admin(interaction, settings)

        async def work() -> dict[str, Any]:
            entries = await library.recent_activity(member, limit, is_admin=admin,
                                                    user_id=str(user.id) if user else None)
            return {"embed": activity_embed(entries, settings.audit_retention_days)}

        await answer_privately(interaction, work)

    return group


def say_command(service: CloneService, library: VoiceLibrary) -> app_commands.Command:
    """`/say voice text [language]`: a clone job with a saved voice, through the same flow as `/clone`."""
    max_chars = min(service.settings.max_text_chars, OPTION_MAX_CHARS)
    Text = app_commands.Range[str, 1, max_chars]

    async def say(interaction: discord.Interaction, voice: Name, text: Text, language: str | None = None) -> None:
        member, admin = member_of(interaction), caller_is_admin(interaction, service.settings)

        async def check() -> None:
            await service.check_request(member.key, text, None, language, is_admin=admin)

        async def submit(progress: JobProgress) -> Job:
            return await library.say(member, voice, text, language, place=place_of(interaction),
                                     on_progress=progress.on_job, is_admin=admin,
                                     channel_id=str(interaction.channel_id))

        await run_job(interaction, check, submit, title="Saved voice", starting="Preparing the voice…")

    say = app_commands.describe(voice="A saved voice: yours first, then this server's",
                                text=f"What the voice should say (up to {max_chars} characters)",
                                language="Language of the text (default: detect automatically)")(say)
    say = app_commands.autocomplete(voice=voice_completer(library), language=complete_language)(say)
    return app_commands.Command(name="say", description="Speak a text with a saved voice", callback=say)
