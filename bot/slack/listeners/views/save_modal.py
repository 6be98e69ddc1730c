"""The save form was submitted: the name, the transcript and the consent are checked on the spot, then (within
Slack's 3 s, `bot.slack.form_answer`) the clip is fetched and the save prepared and confirmed. A refusal (a
taken name, a block, too many voices, a bad clip) stays on the form; a slower check closes it and the outcome
arrives privately.

Consent is the ticked checkbox under the statement the form showed (`voice_forms.save_view`); the form carries
that statement's digest, and a form showing another wording than the library's current one is refused, so the
statement stored with the voice is the one the member confirmed. Nothing is stored before both hold.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import InvalidInput, VoicebotError
from backend.validation import check_text
from bot.slack.clip_fetch import fetch_clip
from bot.slack.form_answer import ignore_replay, refused_on_form, remember_closed, tell_outcome
from bot.slack.members import member_of
from bot.slack.messages import escape
from bot.slack.modals import REF_TEXT
from bot.slack.replies import Replier
from bot.slack.services import SlackServices
from bot.slack.voice_forms import CONSENT, NAME, SaveForm, read_save_form, statement_digest
from commands.storage.voices import Member, Voice
from commands.voice_names import check_voice_name

# Refusals about the name, the member or the bot (its database, too many saves at once) go on the first field,
# the name; the rest concern the clip.
NAME_ERRORS = frozenset({"bad_voice_name", "name_taken", "too_many_voices", "blocked", "bad_scope",
                         "storage_unavailable", "busy"})
NO_CONSENT = "Tick the box to confirm the statement: a voice is saved only with that consent."
NEW_STATEMENT = ("The consent statement changed since this form opened. Close the form and run `/voice save` "
                 "again to read the current one.")


def form_errors(form: SaveForm, services: SlackServices) -> dict[str, str]:
    """What can be checked without the clip or the database, every field at once."""
    errors: dict[str, str] = {}
    try:
        check_voice_name(form.name)
    except InvalidInput as exc:
        errors[NAME] = exc.message
    if form.file is None:
        errors[form.clip_block] = "Attach a recording of the voice to save."
    if form.transcript is not None:
        try:
            check_text(form.transcript, services.settings.max_transcript_chars, field="transcript")
        except InvalidInput as exc:
            errors[REF_TEXT] = exc.message
    if form.origin.statement != statement_digest(services.library.CONSENT_STATEMENT):
        errors[CONSENT] = NEW_STATEMENT
    elif not form.consented:
        errors[CONSENT] = NO_CONSENT
    return errors


async def save(services: SlackServices, client: AsyncWebClient, member: Member, form: SaveForm) -> Voice:
    """Every check that needs no clip, then the clip fetched, prepared (intake) and saved with the consent."""
    library = services.library
    assert form.file is not None

    async def check(size: int | None) -> None:
        await library.check_save(member, form.name, form.scope, form.transcript, clip_size=size)

    clip = await fetch_clip(services, client, form.file, check)
    pending = await library.prepare_save(member, form.name, form.scope, clip.data, clip.filename, form.transcript)
    return await library.confirm_save(pending.id, member)


def saved_text(voice: Voice) -> str:
    who = "Only you can use it" if voice.scope == "me" else "Everyone in this workspace can use it"
    name = escape(voice.name)
    return (f":white_check_mark: Saved the voice *{name}*. {who}: `/say {name}: Hello!` "
            "(`/voice info` shows it, `/voice delete` removes it).")


def save_modal_submission(services: SlackServices):
    async def submit_save_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                               client: AsyncWebClient) -> None:
        if await ignore_replay(services, ack, view):
            return
        form = read_save_form(view)
        if errors := form_errors(form, services):
            await ack(response_action="errors", errors=errors)
            return
        member = member_of(body)
        work = asyncio.get_running_loop().create_task(save(services, client, member, form), name="slack-voice-save")

        def block_for(error: VoicebotError) -> str:
            return NAME if error.code in NAME_ERRORS else form.clip_block

        if await refused_on_form(services, ack, work, block_for, user=member.user_id):
            return
        await ack()
        remember_closed(services, view)
        origin = form.origin
        reply = Replier(client, origin.channel_id, member.user_id, response_url=origin.response_url,
                        thread_ts=origin.thread_ts)
        services.spawn(tell_outcome(services, work, reply, saved_text), name=f"slack-voice-save-{member.user_id}")

    return submit_save_form
