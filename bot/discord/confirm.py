"""A private question with two buttons, answered by the user who was asked: the consent step of a save and the
last word before forget-me.

Only the asked user's clicks count (anyone else gets an ephemeral "not yours"); the answer is acknowledged at
once (Discord's 3 s window) and the question message is then edited into the outcome, without its buttons, so a
second click cannot run the action twice. When the database was unavailable nothing happened, so the question
stays, buttons and all, under the error: the user can try again. The buttons stop working after `timeout_s`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord
import structlog

from backend.errors import VoicebotError
from bot.discord.calls import CALL_FAILURES, describe_failure, within
from bot.discord.errors import UNEXPECTED, send_ephemeral
from commands.storage.errors import StorageUnavailable

log = structlog.get_logger(__name__)

NOT_YOURS = "This question was asked of someone else."

# Runs on "yes": returns what the question message becomes.
Action = Callable[[discord.Interaction], Awaitable[str]]


class Confirm(discord.ui.View):
    """Yes / no for `user_id`. `on_yes` does the work; `on_no` (optional) undoes what waited for the answer."""

    def __init__(self, user_id: int, question: str, *, yes: str, no: str, on_yes: Action, on_no: Action,
                 timeout_s: float, danger: bool = False) -> None:
        super().__init__(timeout=timeout_s)
        self.user_id = user_id
        self.question = question
        self._busy = False
        self._on_yes = on_yes
        self._on_no = on_no
        yes_button: discord.ui.Button[Confirm] = discord.ui.Button(
            label=yes, style=discord.ButtonStyle.danger if danger else discord.ButtonStyle.success)
        no_button: discord.ui.Button[Confirm] = discord.ui.Button(label=no, style=discord.ButtonStyle.secondary)
        yes_button.callback = lambda interaction: self._answer(interaction, self._on_yes)  # type: ignore[method-assign]
        no_button.callback = lambda interaction: self._answer(interaction, self._on_no)  # type: ignore[method-assign]
        self.add_item(yes_button)
        self.add_item(no_button)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.user_id:
            await send_ephemeral(interaction, NOT_YOURS)
            return False
        return True

    async def _answer(self, interaction: discord.Interaction, action: Action) -> None:
        timing = interaction.client.timing  # type: ignore[attr-defined]
        try:
            await within(timing.call_s, interaction.response.defer())
        except CALL_FAILURES as exc:
            log.warning("discord.confirm_ack_failed", reason=describe_failure(exc))
            return
        if self._busy:  # a second click while the first runs
            return
        self._busy = True
        ask_again = False
        try:
            outcome = await action(interaction)
        except StorageUnavailable as exc:
            outcome, ask_again = f"{exc.message}\n\n{self.question}", True
        except VoicebotError as exc:
            outcome = exc.message
        except Exception:
            log.exception("discord.confirm_action_crashed", user_id=interaction.user.id)
            outcome = UNEXPECTED
        finally:
            self._busy = False
        if not ask_again:
            self.stop()
        try:
            await within(timing.call_s, interaction.edit_original_response(
                content=outcome, view=self if ask_again else None, allowed_mentions=discord.AllowedMentions.none()))
        except CALL_FAILURES as exc:
            log.warning("discord.confirm_outcome_not_shown", reason=describe_failure(exc), outcome=outcome)
