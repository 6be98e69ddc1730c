"""Message shortcut "Clone this voice": the message's audio file is the reference clip. A small modal offers
speaking a text with it once (the clone form; the result goes into the message's thread) or saving it as a
voice (the save form, with the consent statement) — `bot.slack.listeners.actions.shortcut_choice`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.files import find_audio
from bot.slack.messages import NO_AUDIO_IN_MESSAGE
from bot.slack.modals import Origin, open_form, slim_file
from bot.slack.services import SlackServices
from bot.slack.voice_forms import choice_view

CALLBACK_ID = "clone_this_voice"  # as in manifest.yaml


def clone_this_voice(services: SlackServices):
    async def offer_clone_or_save(ack: AsyncAck, shortcut: dict[str, Any], client: AsyncWebClient,
                                  respond: AsyncRespond) -> None:
        await ack()
        message = shortcut.get("message") or {}
        audio = await find_audio(client, message.get("files"))
        if audio is None:
            await respond(text=f":x: {NO_AUDIO_IN_MESSAGE}", response_type="ephemeral")
            return
        origin = Origin(channel_id=shortcut["channel"]["id"], thread_ts=message.get("thread_ts") or message["ts"],
                        response_url=shortcut.get("response_url"), file=slim_file(audio))
        await open_form(services, client, respond, shortcut["trigger_id"], choice_view(origin), "the form")

    return offer_clone_or_save
