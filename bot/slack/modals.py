"""The clone form: the modal `/clone` and the "Clone this voice" shortcut open, and reading it back.

`/clone` asks for the reference clip (a `file_input`); the shortcut already has it (the message's audio file,
kept in `private_metadata` with the channel and thread to answer in), so its form asks only for the text. Only
the file's id and name are kept: the file is looked up by id when the form is submitted (`bot.slack.files`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import InvalidInput
from backend.languages import AUTO, normalize_language
from backend.validation import check_text
from bot.slack.blocks import context, modal, option, plain, read_selected, read_value, text_input
from bot.slack.files import AUDIO_FILETYPES
from bot.slack.messages import error_line, escape
from bot.slack.services import SlackServices
from bot.slack.slack_errors import explain
from commands.settings import CommandSettings
from commands.voices import language_choices

CLONE_VIEW = "clone_modal"  # callback_id of the view
REFERENCE, TEXT, REF_TEXT, LANGUAGE, VARIANT = "reference", "text", "ref_text", "language", "variant"  # block ids
FILE_ACTION, VALUE_ACTION = "file", "value"
# The file fields the shortcut keeps in private_metadata (limited to 3000 characters): no URLs, see files.py.
FILE_KEYS = ("id", "name")


@dataclass
class Origin:
    """Where the form came from and where to answer: travels in the modal's `private_metadata`."""

    channel_id: str
    thread_ts: str | None = None  # answer in this thread (shortcut); None: a new message in the channel (/clone)
    response_url: str | None = None  # for ephemeral errors once the modal is closed
    file: dict[str, Any] | None = None  # the shortcut's clip
    statement: str | None = None  # the save form: digest of the consent statement it showed

    def dump(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, separators=(",", ":"))

    @classmethod
    def load(cls, metadata: str | None) -> Origin:
        data = json.loads(metadata or "{}")
        return cls(channel_id=data.get("channel_id", ""), thread_ts=data.get("thread_ts"),
                   response_url=data.get("response_url"), file=data.get("file"), statement=data.get("statement"))


def slim_file(file: dict[str, Any]) -> dict[str, Any]:
    return {key: file[key] for key in FILE_KEYS if key in file}


def clone_view(origin: Origin, settings: CommandSettings, variants: list[str] | None = None) -> dict[str, Any]:
    """The modal; a variant picker appears only when more than one backend variant is configured."""
    max_chars = settings.max_text_chars
    blocks: list[dict[str, Any]] = [clip_block(origin, settings)]
    blocks += [
        text_input(TEXT, "Text to speak", VALUE_ACTION, max_length=max_chars, multiline=True,
                   placeholder="What the cloned voice should say"),
        transcript_block(settings),
        language_block(),
    ]
    if variants and len(variants) > 1:
        blocks.append({"type": "input", "block_id": VARIANT, "label": plain("Model variant"),
                       "element": {"type": "static_select", "action_id": VALUE_ACTION,
                                   "initial_option": option(variants[0]),
                                   "options": [option(name) for name in variants]}})
    return modal(CLONE_VIEW, "Clone a voice", blocks, submit="Generate", private_metadata=origin.dump())


def clip_block(origin: Origin, settings: CommandSettings) -> dict[str, Any]:
    """The reference clip: a file picker, or the line naming the message's file the shortcut already has."""
    if origin.file is None:
        return {
            "type": "input", "block_id": REFERENCE, "label": plain("Reference clip"),
            "hint": plain(f"{settings.min_ref_seconds:g}-{settings.max_ref_seconds:g} s of clean speech, "
                          f"up to {settings.max_ref_mib:g} MiB. Only clone voices you have permission to use."),
            "element": {"type": "file_input", "action_id": FILE_ACTION, "filetypes": AUDIO_FILETYPES,
                        "max_files": 1},
        }
    name = str(origin.file.get("name") or "the message's audio file")
    return context(f"Reference clip: *{escape(name.replace('*', ''))}*. Only clone voices you have permission to use.")


def transcript_block(settings: CommandSettings) -> dict[str, Any]:
    return text_input(REF_TEXT, "Transcript of the reference clip", VALUE_ACTION,
                      max_length=settings.max_transcript_chars, multiline=True, optional=True,
                      hint="Optional: what the clip says, word for word. It makes the clone closer.")


def language_block() -> dict[str, Any]:
    return {"type": "input", "block_id": LANGUAGE, "label": plain("Language"),
            "element": {"type": "static_select", "action_id": VALUE_ACTION, "initial_option": option(AUTO),
                        "options": [option(name) for name in language_choices()]}}


async def open_clone_form(services: SlackServices, client: AsyncWebClient, respond: AsyncRespond, trigger_id: str,
                          origin: Origin) -> None:
    view = clone_view(origin, services.settings, services.clone.variant_names)
    await open_form(services, client, respond, trigger_id, view, "the clone form")


async def open_form(services: SlackServices, client: AsyncWebClient, respond: AsyncRespond, trigger_id: str,
                    view: dict[str, Any], what: str) -> None:
    """`views.open`; a Slack failure (expired trigger, missing scope) is told to the user privately."""
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackClientError as exc:
        problem = explain(exc, f"open {what}")
        services.note(problem)
        await respond(text=error_line(problem), response_type="ephemeral")


@dataclass
class CloneForm:
    """A submitted clone form."""

    origin: Origin
    text: str
    ref_text: str | None
    language: str | None
    variant: str | None
    file: dict[str, Any] | None  # the uploaded clip, or the shortcut's
    has_file_input: bool = field(default=False)

    @property
    def clip_block(self) -> str:
        """The block an error about the clip is shown on (the shortcut's form has no file picker)."""
        return REFERENCE if self.has_file_input else TEXT


def read_form(view: dict[str, Any]) -> CloneForm:
    values: dict[str, Any] = view.get("state", {}).get("values", {})
    origin = Origin.load(view.get("private_metadata"))
    return CloneForm(origin=origin, text=read_value(values, TEXT, VALUE_ACTION) or "",
                     ref_text=read_value(values, REF_TEXT, VALUE_ACTION),
                     language=read_selected(values, LANGUAGE, VALUE_ACTION),
                     variant=read_selected(values, VARIANT, VALUE_ACTION), file=read_file(values, origin),
                     has_file_input=REFERENCE in values)


def read_file(values: dict[str, Any], origin: Origin) -> dict[str, Any] | None:
    """The clip the form names: the uploaded one, or the shortcut's."""
    files = (values.get(REFERENCE, {}).get(FILE_ACTION) or {}).get("files") or []
    return files[0] if files else origin.file


def form_errors(form: CloneForm, settings: CommandSettings) -> dict[str, str]:
    """Errors per block for what can be checked without the clip, using the same checks as
    `CloneService.submit` (which runs them again): every field's problem is shown at once."""
    errors: dict[str, str] = {}
    if form.file is None:
        errors[form.clip_block] = "Attach a reference clip: a recording of the voice to clone."
    checks = [(TEXT, lambda: check_text(form.text, settings.max_text_chars)),
              (LANGUAGE, lambda: normalize_language(form.language))]
    if form.ref_text and form.ref_text.strip():
        checks.append((REF_TEXT, lambda: check_text(form.ref_text or "", settings.max_transcript_chars, field="transcript")))
    for block, check in checks:
        try:
            check()
        except InvalidInput as exc:
            errors.setdefault(block, exc.message)
    return errors
