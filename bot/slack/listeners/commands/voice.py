"""`/voice <sub-command>`: save, list, info, rename, delete, forget-me, api-key, and for admins block, unblock and
activity, a member's voices (`list @member`) and their takedown (`delete <name> @member`). Every answer is
ephemeral (only the caller sees it); forms open for what needs a file or a choice.

Slack shows the command to everyone, so admin rights are checked here, on the server, for every sub-command
that needs them (`bot.slack.members`). User mentions arrive escaped (`<@U123|name>`: `should_escape` in the
manifest), so a blocked user is named by id, never by a display name someone could change. A takedown's owner
must be a mention: a bare id could be a voice's name ("UFO").
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import InvalidInput, VoicebotError
from bot.slack.members import USER_MENTION, admin_check, member_of, require_admin
from bot.slack.messages import error_line, escape
from bot.slack.modals import Origin, open_form
from bot.slack.services import SlackServices
from bot.slack.voice_forms import forget_me_prompt, rename_view, save_view
from bot.slack.voice_messages import (
    VOICE_HELP,
    activity_message,
    member_voices_message,
    voice_message,
    voices_message,
)
from commands.api_keys import ApiKeys, usage_text
from commands.storage.voices import Member

USER = re.compile(rf"{USER_MENTION.pattern}|\b([UW][A-Z0-9]+)\b")  # a mention, or a bare member id
DEFAULT_ACTIVITY = 20  # entries; the audit trail shows at most `commands.audit_trail.MAX_ACTIVITY`


@dataclass
class VoiceCall:
    """One `/voice` invocation: who, where, and the text after the sub-command."""

    services: SlackServices
    client: AsyncWebClient
    respond: AsyncRespond
    command: dict[str, Any]
    member: Member
    args: str

    @property
    def origin(self) -> Origin:
        return Origin(channel_id=self.command["channel_id"], response_url=self.command.get("response_url"))

    async def answer(self, text: str, **message: Any) -> None:
        await self.respond(text=text, response_type="ephemeral", **message)

    def name(self, usage: str) -> str:
        if not self.args:
            raise InvalidInput(f"Which voice? {usage}", code="usage")
        return self.args

    def user(self, usage: str) -> str:
        """The user id the arguments name (a mention or a bare id)."""
        found = USER.search(self.args)
        if found is None:
            raise InvalidInput(f"Name a member: {usage}", code="usage")
        return found.group(1) or found.group(2)

    async def is_admin(self) -> bool:
        admin, _ = await admin_check(self.services, self.client, self.member)
        return admin


async def save(call: VoiceCall) -> None:
    view = save_view(call.origin, call.services.settings, call.services.library.CONSENT_STATEMENT,
                     name=call.args or None)
    await open_form(call.services, call.client, call.respond, call.command["trigger_id"], view, "the save form")


async def list_voices(call: VoiceCall) -> None:
    if not call.args:
        await call.answer(**voices_message(await call.services.library.voices(call.member), call.member))
        return
    owner_id = call.user("`/voice list @member` (admins)")
    await require_admin(call.services, call.client, call.member)
    voices = await call.services.library.voices_of(call.member, owner_id, is_admin=True)
    await call.answer(**member_voices_message(voices, owner_id))


async def info(call: VoiceCall) -> None:
    voice = await call.services.library.info(call.member, call.name("`/voice info <name>`"))
    await call.answer(**voice_message(voice))


async def delete(call: VoiceCall) -> None:
    """`/voice delete <name>`, or an admin's takedown of any voice a member saved here: `<name> @member`."""
    owner = USER_MENTION.search(call.args)
    if owner is None:
        name = call.name("`/voice delete <name>`")
        voice = await call.services.library.delete(call.member, name, is_admin=await call.is_admin())
        await call.answer(f":wastebasket: Deleted the voice *{escape(voice.name)}* and its reference clip.")
        return
    await require_admin(call.services, call.client, call.member)  # before any lookup: a refusal reveals nothing
    name = USER_MENTION.sub("", call.args).strip()
    if not name:
        raise InvalidInput("Which voice? `/voice delete <name> @member`", code="usage")
    voice = await call.services.library.delete(call.member, name, is_admin=True, owner_id=owner.group(1))
    await call.answer(f":wastebasket: Took down the voice *{escape(voice.name)}* of <@{voice.owner.user_id}>. "
                      "They are not told; the bot's log records that you did it.")


async def rename(call: VoiceCall) -> None:
    view = rename_view(call.origin, call.args or None)
    await open_form(call.services, call.client, call.respond, call.command["trigger_id"], view, "the rename form")


async def forget_me(call: VoiceCall) -> None:
    await call.answer(**forget_me_prompt())


async def api_key(call: VoiceCall) -> None:
    """`/voice api-key` (a new key, shown once in this ephemeral answer) or `/voice api-key revoke`."""
    library = call.services.library
    keys = ApiKeys(library.storage, library.settings)
    if call.args.lower() == "revoke":
        revoked = await keys.revoke(call.member)
        await call.answer(":lock: Your API key for this workspace is revoked: it no longer works." if revoked
                          else "You have no API key in this workspace.")
        return
    if call.args:
        raise InvalidInput("`/voice api-key` makes a new key; `/voice api-key revoke` deletes yours.", code="usage")
    issued = await keys.issue(call.member)
    names = [escape(voice.name) for voice in await library.voices(call.member)]
    await call.answer(usage_text(issued, names))


async def block(call: VoiceCall) -> None:
    user_id = call.user("`/voice block @member`")
    await require_admin(call.services, call.client, call.member)
    await call.services.library.block(call.member, user_id, is_admin=True)
    await call.answer(f":no_entry: <@{user_id}> can no longer save or use voices in this workspace. "
                      f"Undo with `/voice unblock <@{user_id}>`.")


async def unblock(call: VoiceCall) -> None:
    user_id = call.user("`/voice unblock @member`")
    await require_admin(call.services, call.client, call.member)
    if await call.services.library.unblock(call.member, user_id, is_admin=True):
        await call.answer(f":white_check_mark: <@{user_id}> may save and use voices again.")
    else:
        await call.answer(f"<@{user_id}> was not blocked.")


async def activity(call: VoiceCall) -> None:
    await require_admin(call.services, call.client, call.member)
    user = USER.search(call.args)
    count = re.search(r"\b(\d{1,3})\b", USER.sub("", call.args))
    entries = await call.services.library.recent_activity(
        call.member, int(count.group(1)) if count else DEFAULT_ACTIVITY, is_admin=True,
        user_id=(user.group(1) or user.group(2)) if user else None)
    await call.answer(**activity_message(entries, call.services.settings.audit_retention_days))


async def show_help(call: VoiceCall) -> None:
    await call.answer(VOICE_HELP)


SUBCOMMANDS: dict[str, Callable[[VoiceCall], Awaitable[None]]] = {
    "save": save, "list": list_voices, "info": info, "delete": delete, "rename": rename, "forget-me": forget_me,
    "api-key": api_key, "block": block, "unblock": unblock, "activity": activity, "help": show_help,
}


def voice_command(services: SlackServices):
    async def answer_voice_command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient,
                                   respond: AsyncRespond) -> None:
        await ack()
        sub, _, args = (command.get("text") or "").strip().partition(" ")
        handler = SUBCOMMANDS.get(sub.lower())
        call = VoiceCall(services, client, respond, command, member_of(command), args.strip())
        if handler is None:
            unknown = f"There is no `/voice {escape(sub)}`.\n" if sub else ""
            await call.answer(unknown + VOICE_HELP)
            return
        try:
            await handler(call)
        except VoicebotError as exc:
            services.note(exc, user=call.member.user_id, command=f"/voice {sub.lower()}")
            await call.answer(error_line(exc))

    return answer_voice_command
