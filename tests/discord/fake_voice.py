"""Discord's voice side, faked at discord.py's own boundary: `VoiceChannel.connect(cls=...)` takes any
`discord.VoiceProtocol`, so the bot's code, discord.py's channel and state bookkeeping (`guild.voice_client`) and
the audio source all run for real; only the UDP/Opus/DAVE connection is replaced by `FakeVoiceClient`, whose
player thread reads the source like discord.py's `AudioPlayer` (as fast as it can, without the 20 ms pacing).

The guild the voice commands need (its channels, the bot's rights, who is in which voice channel) reaches the
client as the gateway's GUILD_CREATE (`guild_payload`, fed through `parse_guild_create`).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

import discord

from tests.discord.fake_api import BOT_ID, CHANNEL_ID, GUILD_ID, message_payload, snowflake, user_payload

VOICE_ID = 1_000_000_000_000_000_010
OTHER_VOICE_ID = 1_000_000_000_000_000_011
OTHER_TEXT_ID = 1_000_000_000_000_000_012
EVERYONE = discord.Permissions(view_channel=True, connect=True, speak=True, send_messages=True).value
MAX_FRAMES = 50_000  # a source that never ends fails the test instead of hanging it


class FakeVoiceClient(discord.VoiceProtocol):
    """Records every connection: where, how (self_deaf) and each frame played."""

    made: ClassVar[list[FakeVoiceClient]] = []

    def __init__(self, client: discord.Client, channel: discord.abc.Connectable) -> None:
        super().__init__(client, channel)
        self.connected = False
        self.self_deaf: bool | None = None
        self.frames: list[bytes] = []
        self.played: list[list[bytes]] = []  # frames per source
        self.channels: list[int] = [channel.id]  # type: ignore[attr-defined]
        self.playing = threading.Event()
        FakeVoiceClient.made.append(self)

    async def connect(self, *, timeout: float, reconnect: bool, self_deaf: bool = False, self_mute: bool = False) -> None:
        self.connected, self.self_deaf = True, self_deaf

    async def disconnect(self, *, force: bool = False) -> None:
        self.connected = False
        self.cleanup()

    async def move_to(self, channel: discord.abc.Snowflake | None) -> None:
        self.channel = channel  # type: ignore[assignment]
        self.channels.append(channel.id)  # type: ignore[union-attr]

    def is_connected(self) -> bool:
        return self.connected

    def is_playing(self) -> bool:
        return self.playing.is_set()

    def play(self, source: discord.AudioSource, *, after: Any = None, **_: Any) -> None:
        assert not self.playing.is_set(), "play() while playing: discord.py raises ClientException"
        self.playing.set()

        def run() -> None:
            frames: list[bytes] = []
            while len(frames) < MAX_FRAMES and (frame := source.read()):
                frames.append(frame)
            source.cleanup()
            self.played.append(frames)
            self.frames += frames
            self.playing.clear()
            if after is not None:
                after(None)

        threading.Thread(target=run, name="fake-voice-player", daemon=True).start()


def channel_payload(channel_id: int, name: str, kind: int, overwrites: list[dict] | None = None,
                    user_limit: int = 0) -> dict[str, Any]:
    payload: dict[str, Any] = {"id": str(channel_id), "type": kind, "guild_id": str(GUILD_ID), "name": name,
                               "position": 0, "permission_overwrites": overwrites or [], "nsfw": False,
                               "parent_id": None}
    if kind == 2:
        payload |= {"bitrate": 64000, "user_limit": user_limit, "rtc_region": None}
    return payload


def member_payload(user_id: int, name: str = "member", *, bot: bool = False) -> dict[str, Any]:
    return {"user": user_payload(user_id, name, bot=bot), "roles": [], "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False, "mute": False, "flags": 0}


def voice_state(user_id: int, channel_id: int | None) -> dict[str, Any]:
    """A voice state as GUILD_CREATE lists it, or (with its member) as VOICE_STATE_UPDATE sends it."""
    return {"user_id": str(user_id), "channel_id": str(channel_id) if channel_id else None, "guild_id": str(GUILD_ID),
            "session_id": "s", "deaf": False, "mute": False, "self_deaf": False, "self_mute": False,
            "self_video": False, "suppress": False, "request_to_speak_timestamp": None,
            "member": member_payload(user_id)}


def deny(*names: str) -> list[dict[str, Any]]:
    """A channel overwrite that takes `names` (Permissions flags) from the bot."""
    value = discord.Permissions(**{name: True for name in names}).value
    return [{"id": str(BOT_ID), "type": 1, "allow": "0", "deny": str(value)}]


def guild_payload(in_voice: dict[int, int], *, voice_overwrites: list[dict] | None = None,
                  user_limit: int = 0, names: dict[int, str] | None = None,
                  bots: frozenset[int] = frozenset()) -> dict[str, Any]:
    """The guild as GUILD_CREATE delivers it: text and voice channels, the bot's member, and the voice states
    `in_voice` (user id -> voice channel id) with their members (named from `names`; those in `bots` are bot
    accounts)."""
    everyone = {"id": str(GUILD_ID), "name": "@everyone", "permissions": str(EVERYONE), "position": 0, "color": 0,
                "hoist": False, "managed": False, "mentionable": False, "flags": 0}
    bot_member = {"user": user_payload(BOT_ID, "voicebot", bot=True), "roles": [], "joined_at":
                  "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False, "flags": 0}
    return {"id": str(GUILD_ID), "name": "Test server", "owner_id": "1", "roles": [everyone], "emojis": [],
            "stickers": [], "features": [], "member_count": 2, "large": False, "threads": [], "stage_instances": [],
            "guild_scheduled_events": [], "premium_tier": 0, "presences": [],
            "channels": [channel_payload(CHANNEL_ID, "general", 0), channel_payload(OTHER_TEXT_ID, "random", 0),
                         channel_payload(VOICE_ID, "Lounge", 2, voice_overwrites, user_limit),
                         channel_payload(OTHER_VOICE_ID, "Games", 2)],
            "voice_states": [voice_state(user, channel) for user, channel in in_voice.items()],
            "members": [bot_member, *(member_payload(user, (names or {}).get(user, "member"), bot=user in bots)
                                      for user in in_voice)],
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "mfa_level": 0, "nsfw_level": 0, "preferred_locale": "en-US", "system_channel_flags": 0}


def chat_message(author_id: int, content: str, *, name: str = "bob", bot: bool = False,
                 channel_id: int = CHANNEL_ID, **extra: Any) -> dict[str, Any]:
    """MESSAGE_CREATE of a guild text channel."""
    payload = message_payload(snowflake(), content, author=user_payload(author_id, name, bot=bot),
                              channel_id=channel_id)
    return payload | {"guild_id": str(GUILD_ID), "member": {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00",
                                                             "deaf": False, "mute": False, "flags": 0}} | extra


async def until(condition: Any, timeout: float = 10.0) -> None:
    """Wait until `condition()` holds (the player runs on its own thread and task)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)
