"""One `/say` job seen from Slack: the same progress message and delivery as a clone job (`CloneFlow`), but
the voice is a saved one, looked up by name (the member's own first, then the workspace's) and its clip read
from the voice library, so nothing is downloaded from Slack."""

from __future__ import annotations

from bot.slack.clone_flow import CloneFlow
from commands.health import is_admin
from commands.job_journal import journaled_as
from commands.jobs import Job


class SayFlow(CloneFlow):
    async def _submit(self) -> Job:
        order, library = self.order, self.services.library
        assert order.voice is not None
        order.voice = (await library.find(order.member, order.voice)).name  # as saved, for the result's comment
        with journaled_as(self.origin()):
            return await library.say(
                order.member, order.voice, order.text, order.language, place=order.place,
                on_progress=self.progress.on_job, is_admin=is_admin(order.user_key, False, self.services.settings),
                channel_id=order.channel,
            )
