"""The voice picker's options as the member types: their own voices first, then the workspace's, by name
prefix (`VoiceLibrary.autocomplete`). Slack waits 3 s for them and has nowhere to show an error, so a failing
database gives an empty list (the library logs it).

A workspace voice with the same name as one of the member's own is left out: `/say` with that name speaks with
the member's own voice (own voices first), so offering both would offer one voice twice.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack.blocks import option
from bot.slack.members import member_of
from bot.slack.services import SlackServices
from commands.storage.voices import Member, Voice

OPTIONS_MAX = 100  # Slack's limit for one options answer


def voice_label(voice: Voice, member: Member) -> str:
    return f"{voice.name} (yours)" if voice.owner == member else f"{voice.name} (workspace)"


def voice_options(services: SlackServices):
    async def answer_voice_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        member = member_of(body)
        voices = await services.library.autocomplete(member, str(body.get("value") or ""), limit=OPTIONS_MAX)
        seen: set[str] = set()
        options = []
        for voice in voices:
            if voice.key not in seen:
                seen.add(voice.key)
                options.append(option(voice_label(voice, member), voice.name))
        await ack(options=options)

    return answer_voice_options
