"""The voice library's forms: save a voice (with the consent statement), speak with one, rename one, and the
choice the "Clone this voice" shortcut offers. Reading each back from `view.state.values`.

A saved voice is picked with an `external_select`: Slack asks the bot for options as the user types
(`bot.slack.listeners.options`), so the list is the member's own voices and the workspace's, however many, and
always current. The save form shows the consent statement word for word above a required checkbox; the form
carries a digest of the statement it showed, and a submission of an older wording is sent back with the new
one (`Origin.statement`): what is stored with the voice is the wording the member ticked, never another.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from bot.slack.blocks import (
    context,
    modal,
    option,
    plain,
    read_checked,
    read_selected,
    read_value,
    section,
    text_input,
)
from bot.slack.messages import escape
from bot.slack.modals import (
    REF_TEXT,
    REFERENCE,
    TEXT,
    VALUE_ACTION,
    Origin,
    clip_block,
    language_block,
    read_file,
    transcript_block,
)
from commands.settings import CommandSettings
from commands.voice_names import MAX_NAME_CHARS, RULE

SAVE_VIEW, SAY_VIEW, RENAME_VIEW, CHOICE_VIEW = "voice_save_modal", "voice_say_modal", "voice_rename_modal", \
    "voice_choice_modal"
NAME, SCOPE, CONSENT, VOICE, NEW_NAME = "name", "scope", "consent", "voice", "new_name"  # block ids
VOICE_ACTION = "voice_name"  # the external_select's action id: the options listener answers for it
CONSENT_ACTION, SCOPE_ACTION = "consent", "scope"
CHOOSE_CLONE, CHOOSE_SAVE = "choose_clone", "choose_save"  # the shortcut's two buttons
FORGET_ME = "forget_me"  # the button of /voice forget-me
# Slack counts what the user types; NFKC can shorten it ("ｍｙ" -> "my"), so the form lets a little more in and
# `commands.voice_names` has the last word.
NAME_INPUT_CHARS = MAX_NAME_CHARS * 2
SCOPES = {"me": "Only me", "server": "Everyone in this workspace"}


def statement_digest(statement: str) -> str:
    return hashlib.sha256(statement.encode()).hexdigest()[:16]


def voice_select(label: str, initial: str | None = None) -> dict[str, Any]:
    """An input with an `external_select` of the voices the member may use (own first, then the workspace's)."""
    element: dict[str, Any] = {"type": "external_select", "action_id": VOICE_ACTION, "min_query_length": 0,
                               "placeholder": plain("Type to search your voices")}
    if initial:
        element["initial_option"] = option(initial)
    return {"type": "input", "block_id": VOICE, "label": plain(label), "element": element}


def name_input(block_id: str, label: str, initial: str | None = None) -> dict[str, Any]:
    return text_input(block_id, label, VALUE_ACTION, max_length=NAME_INPUT_CHARS, initial=initial, hint=RULE)


def save_view(origin: Origin, settings: CommandSettings, statement: str, name: str | None = None) -> dict[str, Any]:
    """Name, clip (or the shortcut's), transcript, who may use it, and the consent statement to tick."""
    blocks = [
        name_input(NAME, "Voice name", name),
        clip_block(origin, settings),
        transcript_block(settings),
        {"type": "input", "block_id": SCOPE, "label": plain("Who may use it"),
         "element": {"type": "radio_buttons", "action_id": SCOPE_ACTION, "initial_option": option(SCOPES["me"], "me"),
                     "options": [option(label, value) for value, label in SCOPES.items()]}},
        section("*Consent*\n>" + escape(statement).replace("\n", "\n>")),
        {"type": "input", "block_id": CONSENT, "label": plain("Your confirmation"),
         "element": {"type": "checkboxes", "action_id": CONSENT_ACTION,
                     "options": [option("I confirm the statement above.", "confirmed")]}},
    ]
    metadata = dataclasses.replace(origin, statement=statement_digest(statement)).dump()
    return modal(SAVE_VIEW, "Save a voice", blocks, submit="Save", private_metadata=metadata)


@dataclass
class SaveForm:
    origin: Origin
    name: str
    file: dict[str, Any] | None
    transcript: str | None
    scope: str
    consented: bool
    has_file_input: bool

    @property
    def clip_block(self) -> str:
        """Where a problem with the clip is shown (the shortcut's form has no file picker: on the name)."""
        return REFERENCE if self.has_file_input else NAME


def read_save_form(view: dict[str, Any]) -> SaveForm:
    values: dict[str, Any] = view.get("state", {}).get("values", {})
    origin = Origin.load(view.get("private_metadata"))
    transcript = read_value(values, REF_TEXT, VALUE_ACTION)
    return SaveForm(
        origin=origin, name=read_value(values, NAME, VALUE_ACTION) or "", file=read_file(values, origin),
        transcript=transcript if transcript and transcript.strip() else None,
        scope=read_selected(values, SCOPE, SCOPE_ACTION) or "me",
        consented="confirmed" in read_checked(values, CONSENT, CONSENT_ACTION),
        has_file_input=REFERENCE in values,
    )


def say_view(origin: Origin, settings: CommandSettings, voice: str | None = None,
             text: str | None = None) -> dict[str, Any]:
    blocks = [
        voice_select("Voice", voice),
        text_input(TEXT, "Text to speak", VALUE_ACTION, max_length=settings.max_text_chars, multiline=True,
                   initial=text, placeholder="What the voice should say"),
        language_block(),
    ]
    return modal(SAY_VIEW, "Say something", blocks, submit="Speak", private_metadata=origin.dump())


def rename_view(origin: Origin, voice: str | None = None) -> dict[str, Any]:
    blocks = [voice_select("Voice", voice), name_input(NEW_NAME, "New name")]
    return modal(RENAME_VIEW, "Rename a voice", blocks, submit="Rename", private_metadata=origin.dump())


def choice_view(origin: Origin) -> dict[str, Any]:
    """What the "Clone this voice" shortcut opens: speak a text once, or save the clip as a voice."""
    name = str((origin.file or {}).get("name") or "the message's audio file")
    blocks = [
        section(f"Reference clip: *{escape(name.replace('*', ''))}*"),
        {"type": "actions", "block_id": "choice", "elements": [
            {"type": "button", "action_id": CHOOSE_CLONE, "text": plain("Speak a text once"), "style": "primary"},
            {"type": "button", "action_id": CHOOSE_SAVE, "text": plain("Save as a voice")},
        ]},
        context("A saved voice can speak again and again with `/say`, without the clip. "
                "Only clone voices you have permission to use."),
    ]
    return modal(CHOICE_VIEW, "Clone this voice", blocks, submit=None, close="Close",
                 private_metadata=origin.dump())


def selected_voice(values: dict[str, Any]) -> str:
    return read_selected(values, VOICE, VOICE_ACTION) or ""


def forget_me_prompt() -> dict[str, Any]:
    """The ephemeral question `/voice forget-me` answers with: one red button, and Slack's own confirmation
    dialog before it does anything."""
    text = ("This deletes every voice you saved (in every workspace), their reference clips, your activity records, "
            "your jobs in flight and results kept for you, and the backend's cached copies. It cannot be undone.")
    button = {"type": "button", "action_id": FORGET_ME, "style": "danger", "value": "forget-me",
              "text": plain("Delete everything"),
              "confirm": {"title": plain("Forget me?"), "text": plain("Everything Voicebot keeps about you is "
                                                                      "deleted. This cannot be undone."),
                          "confirm": plain("Delete everything"), "deny": plain("Keep it"), "style": "danger"}}
    return {"text": f"Forget you? {text}",
            "blocks": [section(f"*Forget you?* {text}"), {"type": "actions", "elements": [button]}]}
