"""`/tts-check`'s form (a slash command cannot carry a file) and its verdict, in the words of
`commands.watermark_check.verdict_text`: a clip with the watermark came from this bot; a clip without it did not,
or was changed too much to tell. It is never "this is a real recording"."""

from __future__ import annotations

from typing import Any

from backend.intake import MIB
from backend.schema import WatermarkCheck
from backend.watermark import CHECK_LIMITS
from bot.slack.blocks import context, modal, plain, section
from bot.slack.files import AUDIO_FILETYPES
from bot.slack.messages import escape
from bot.slack.modals import FILE_ACTION, REFERENCE, Origin
from commands.watermark_check import verdict_text

CHECK_VIEW, CHECK_RESULT_VIEW = "tts_check_modal", "tts_check_result"


def check_view(origin: Origin) -> dict[str, Any]:
    blocks = [
        {"type": "input", "block_id": REFERENCE, "label": plain("Audio clip"),
         "hint": plain(f"{CHECK_LIMITS.min_seconds:g}-{CHECK_LIMITS.max_seconds:g} s, up to "
                      f"{CHECK_LIMITS.max_bytes / MIB:g} MiB."),
         "element": {"type": "file_input", "action_id": FILE_ACTION, "filetypes": AUDIO_FILETYPES, "max_files": 1}},
        context("Every clip Voicebot generates carries an inaudible watermark. This checks a clip for it."),
    ]
    return modal(CHECK_VIEW, "Check a clip", blocks, submit="Check", private_metadata=origin.dump())


def verdict_message(check: WatermarkCheck, filename: str | None) -> str:
    """The clip's name and `commands.watermark_check.verdict_text`, the words every platform shows."""
    emoji = ":white_check_mark:" if check.watermarked else ":grey_question:"
    name = f"*{escape(filename)}*: " if filename else ""
    return f"{emoji} {name}{escape(verdict_text(check))}"


def result_view(check: WatermarkCheck, filename: str | None) -> dict[str, Any]:
    return modal(CHECK_RESULT_VIEW, "Check a clip", [section(verdict_message(check, filename))], submit=None,
                 close="Done")
