"""`/speak` and `/read` through discord.py, the voice connection faked at `VoiceChannel.connect(cls=...)`."""

from __future__ import annotations

from typing import Any

import asyncio

import discord
import numpy as np
import pytest

from bot.discord.playback.guilds import PlaybackSettings
from bot.discord.playback.pcm_source import FRAME_BYTES, SILENCE
from tests.clips import sine_clip
from tests.discord.conftest import DiscordHarness
from commands.storage.voices import Member
from tests.discord.fake_api import (
    APPLICATION_COMMAND,
    CHANNEL_ID,
    GUILD_ID,
    Invoker,
    interaction,
    option,
    slash,
    subcommand,
)
from tests.discord.fake_voice import (
    OTHER_TEXT_ID,
    OTHER_VOICE_ID,
    VOICE_ID,
    FakeVoiceClient,
    chat_message,
    deny,
    guild_payload,
    until,
    voice_state,
)
from tests.fakes import FakeBackend

CLIP = sine_clip(3.0, 24_000)


@pytest.fixture(autouse=True)
def fresh_voice_clients() -> None:
    FakeVoiceClient.made.clear()


async def voice_bot(discord_bot: Any, backend: FakeBackend | None = None, *, in_voice: dict[int, int] | None = None,
                    idle_s: float = 60.0, library: bool = False, **guild: Any) -> DiscordHarness:
    harness = await discord_bot(backend or FakeBackend(), library=library, cooldown_s=0.0,
                                voice=PlaybackSettings(voice_cls=FakeVoiceClient, idle_s=idle_s),
                                read_aloud=library)
    harness.bot._connection.parse_guild_create(guild_payload(
        {harness.invoker.user_id: VOICE_ID} if in_voice is None else in_voice, **guild))
    harness.service.recent_clips.remember(f"discord:{harness.invoker.user_id}", CLIP, None)
    return harness


def speak(harness: DiscordHarness, text: str, invoker: Invoker | None = None, **options: str) -> dict[str, Any]:
    listed = [option("text", text), *(option(key, value) for key, value in options.items())]
    return harness.send(APPLICATION_COMMAND, slash("speak", listed), invoker)


def read(harness: DiscordHarness, sub: str, invoker: Invoker | None = None, channel_id: int = CHANNEL_ID,
         **options: Any) -> dict[str, Any]:
    """`/read <sub>` invoked in the text channel `channel_id`."""
    payload = interaction(APPLICATION_COMMAND, subcommand("read", sub, [option(k, v) for k, v in options.items()]),
                          invoker or harness.invoker)
    payload["channel_id"] = payload["channel"]["id"] = str(channel_id)
    harness.api.register(payload)
    harness.bot._connection.parse_interaction_create(payload)
    return payload


def speech_frames(frames: list[bytes]) -> np.ndarray:
    pcm = np.frombuffer(b"".join(frame for frame in frames if frame != SILENCE), dtype="<i2").reshape(-1, 2)
    return pcm[:, 0]


async def test_speak_joins_the_callers_channel_and_plays_the_speech_as_it_streams(discord_bot) -> None:
    backend = FakeBackend(audio_seconds=2.0)
    harness = await voice_bot(discord_bot, backend)
    payload = speak(harness, "Hello voice channel")
    assert "Speaking in <#%d>" % VOICE_ID in await harness.answer(payload, "Speaking in")
    assert "Spoke 2.0 s" in await harness.answer(payload, "Spoke")
    [voice] = FakeVoiceClient.made
    assert voice.channel.id == VOICE_ID and voice.self_deaf
    assert all(len(frame) == FRAME_BYTES for frame in voice.frames)
    assert len(speech_frames(voice.frames)) == 2.0 * 48_000  # every sample of the 2 s, at 48 kHz
    assert backend.streamed[0].text == "Hello voice channel"
    assert backend.streamed[0].reference == harness.service.recent_clips.last(
        f"discord:{harness.invoker.user_id}").wav


async def test_the_bot_leaves_after_its_idle_time_and_comes_back_when_asked(discord_bot) -> None:
    harness = await voice_bot(discord_bot, idle_s=0.05)
    payload = speak(harness, "Short")
    await harness.answer(payload, "Spoke")
    await until(lambda: FakeVoiceClient.made and not FakeVoiceClient.made[0].connected)
    assert harness.bot.get_guild(GUILD_ID).voice_client is None
    again = speak(harness, "Back again")
    await harness.answer(again, "Spoke")
    assert len(FakeVoiceClient.made) == 2 and len(FakeVoiceClient.made[1].played) == 1


class LosesItsConnection(FakeVoiceClient):
    def play(self, source: Any, *, after: Any = None, **_: Any) -> None:
        raise discord.ClientException("Not connected to voice.")


async def test_a_lost_voice_connection_is_told_and_the_queue_goes_on(discord_bot) -> None:
    harness = await voice_bot(discord_bot)
    harness.bot.playback.settings = PlaybackSettings(voice_cls=LosesItsConnection)
    payload = speak(harness, "Hello")
    assert "lost its voice connection" in await harness.answer(payload, "lost")


async def test_speeches_of_one_server_play_one_after_the_other(discord_bot) -> None:
    backend = FakeBackend(hold=True)
    harness = await voice_bot(discord_bot, backend)
    second_caller = Invoker(name="bob")
    harness.bot._connection.parse_guild_create(guild_payload({harness.invoker.user_id: VOICE_ID,
                                                              second_caller.user_id: VOICE_ID}))
    harness.service.recent_clips.remember(f"discord:{second_caller.user_id}", CLIP, None)
    first = speak(harness, "First")
    await harness.answer(first, "Speaking in")
    second = speak(harness, "Second", second_caller)
    assert "1 before yours" in await harness.answer(second, "Queued")
    calls = [await backend.next_call(), await backend.next_call()]  # both generate before either plays
    for call in calls:
        call.release()
    await harness.answer(first, "Spoke")
    await harness.answer(second, "Spoke")
    [voice] = FakeVoiceClient.made
    assert len(voice.played) == 2


@pytest.mark.parametrize(("in_voice", "guild", "expected"), [
    ({}, {}, "Join a voice channel first"),
    (None, {"voice_overwrites": deny("connect")}, "The bot lacks the Connect permission in <#%d>" % VOICE_ID),
    (None, {"voice_overwrites": deny("view_channel")}, "lacks the View Channel and Connect permissions"),
    (None, {"voice_overwrites": deny("speak")}, "lacks the Speak permission"),
])
async def test_what_stops_the_bot_from_speaking_is_said_plainly(discord_bot, in_voice, guild, expected) -> None:
    backend = FakeBackend()
    harness = await voice_bot(discord_bot, backend, in_voice=in_voice, **guild)
    payload = speak(harness, "Hello")
    assert expected in await harness.answer(payload, expected.split(" ")[0])
    assert not backend.calls and not FakeVoiceClient.made


async def test_speak_without_any_voice_says_how_to_get_one(discord_bot) -> None:
    harness = await voice_bot(discord_bot)
    harness.service.recent_clips.forget(f"discord:{harness.invoker.user_id}")
    payload = speak(harness, "Hello")
    assert "Name a saved voice" in await harness.answer(payload, "Name a saved voice")
    assert not FakeVoiceClient.made


async def test_read_aloud_reads_messages_of_people_in_the_voice_channel(discord_bot) -> None:
    backend = FakeBackend(audio_seconds=0.96)
    harness = await voice_bot(discord_bot, backend, library=True)
    bob, carol, dave, robot = (Invoker(name=name) for name in ("bob", "carol", "dave", "robot"))
    people = (harness.invoker, bob, carol, dave, robot)
    in_voice = {harness.invoker.user_id: VOICE_ID, bob.user_id: VOICE_ID, carol.user_id: VOICE_ID,
                dave.user_id: OTHER_VOICE_ID, robot.user_id: VOICE_ID}
    harness.bot._connection.parse_guild_create(guild_payload(
        in_voice, names={person.user_id: person.name for person in people}, bots=frozenset({robot.user_id})))
    # bob, carol and a bot account saved voices; dave did too but is in another voice channel
    for member in (bob, carol, robot):
        pending = await harness.library.prepare_save(_member(member), f"{member.name} voice", "me", CLIP, "c.wav")
        await harness.library.confirm_save(pending.id, _member(member))
    start = read(harness, "start")
    assert "Reading <#%d> aloud in <#%d>" % (CHANNEL_ID, VOICE_ID) in await harness.answer(start, "Reading")
    [voice] = FakeVoiceClient.made
    assert voice.connected  # joined at once, before any message

    state = harness.bot._connection
    state.parse_message_create(chat_message(bob.user_id, "Hi all!!!! see https://example.com/x?y=1", name="bob"))
    state.parse_message_create(chat_message(bob.user_id, "sooooo good", name="bob"))
    state.parse_message_create(chat_message(carol.user_id, "```code```", name="carol"))
    state.parse_message_create(chat_message(dave.user_id, "I am elsewhere", name="dave"))
    state.parse_message_create(chat_message(robot.user_id, "beep", name="robot", bot=True))  # skip_bots
    state.parse_message_create(chat_message(carol.user_id, "other channel", channel_id=OTHER_TEXT_ID))
    # messages are read in the order they came: once this one is played, every one before it was handled
    state.parse_message_create(chat_message(bob.user_id, "last one", name="bob"))
    await until(lambda: len(voice.played) == 4)
    assert [call.text for call in backend.streamed] == [
        "bob said: Hi all! see a link to example.com", "sooo good", "carol said: a code block", "bob said: last one"]
    assert all(call.max_new_tokens == 376 for call in backend.streamed)  # 30 s by default

    again = read(harness, "start")
    assert "already being read aloud" in await harness.answer(again, "already")
    elsewhere = read(harness, "start", channel_id=OTHER_TEXT_ID)
    assert "reads one channel per server" in await harness.answer(elsewhere, "already")
    other_voice = speak(harness, "Hello", dave)
    assert "The bot is reading" in await harness.answer(other_voice, "reading")

    stop = read(harness, "stop")
    assert "Stopped reading" in await harness.answer(stop, "Stopped")
    assert not voice.connected


def _member(invoker: Invoker) -> Member:
    return Member("discord", str(GUILD_ID), str(invoker.user_id))


async def test_voice_commands_are_synced_and_ask_for_the_intents_they_need(discord_bot) -> None:
    harness = await voice_bot(discord_bot, library=True)
    sync = next(call for call in harness.api.calls if call.method == "PUT" and call.path.endswith("/commands"))
    commands = {command["name"]: command for command in sync.json}
    speak_options = {o["name"]: o for o in commands["speak"]["options"]}
    assert list(speak_options) == ["text", "voice", "language"] and speak_options["text"]["max_length"] == 5000
    assert commands["speak"]["contexts"] == [0] and commands["read"]["dm_permission"] is False  # servers only
    start = next(o for o in commands["read"]["options"] if o["name"] == "start")
    assert [o["name"] for o in start["options"]] == ["voice", "max_seconds", "say_names", "skip_bots", "only_in_voice"]
    assert {o["name"]: (o.get("min_value"), o.get("max_value")) for o in start["options"]}["max_seconds"] == (10, 60)
    intents = harness.bot.intents
    assert intents.guilds and intents.voice_states and intents.guild_messages and intents.message_content


async def test_without_voice_playback_no_voice_command_and_no_intent(discord_bot) -> None:
    harness = await discord_bot(FakeBackend(), library=True)
    sync = next(call for call in harness.api.calls if call.method == "PUT" and call.path.endswith("/commands"))
    assert not {"speak", "read"} & {command["name"] for command in sync.json}
    assert harness.bot.intents.value == 0


async def test_a_speech_stopped_by_shutdown_tells_its_user(discord_bot) -> None:
    backend = FakeBackend(hold=True)
    harness = await voice_bot(discord_bot, backend)
    payload = speak(harness, "A speech that never gets its audio")
    await harness.answer(payload, "Speaking in")
    call = await backend.next_call()
    await harness.bot.playback.close()  # what VoicebotClient.shutdown does first
    assert "Stopped after 0.0 s" in await harness.answer(payload, "Stopped")
    assert call.cancelled  # the generation was called off
    assert not FakeVoiceClient.made[0].connected


async def test_read_aloud_cuts_a_message_at_its_seconds(discord_bot) -> None:
    backend = FakeBackend(audio_seconds=12.0)  # a backend that ignores the frame cap it is sent
    harness = await voice_bot(discord_bot, backend, library=True)
    pending = await harness.library.prepare_save(_member(harness.invoker), "mine", "me", CLIP, "c.wav")
    await harness.library.confirm_save(pending.id, _member(harness.invoker))
    start = read(harness, "start", max_seconds=10, say_names=False)
    await harness.answer(start, "Reading")
    harness.bot._connection.parse_message_create(chat_message(harness.invoker.user_id, "A long message"))
    [voice] = FakeVoiceClient.made
    await until(lambda: len(voice.played) == 1)
    assert backend.streamed[0].text == "A long message" and backend.streamed[0].max_new_tokens == 126
    assert len(voice.played[0]) == 500  # 10 s of 20 ms frames, then the playback ends


async def test_a_stage_is_not_a_place_to_speak(discord_bot) -> None:
    harness = await voice_bot(discord_bot, in_voice={})
    stage = {"id": "1000000000000000020", "type": 13, "guild_id": str(GUILD_ID), "name": "Town hall", "position": 0,
             "permission_overwrites": [], "nsfw": False, "parent_id": None, "bitrate": 64000, "user_limit": 0,
             "rtc_region": None}
    payload = guild_payload({harness.invoker.user_id: 1000000000000000020})
    payload["channels"].append(stage)
    harness.bot._connection.parse_guild_create(payload)
    answer = speak(harness, "Hello")
    assert "not on stages" in await harness.answer(answer, "stages")
    assert not FakeVoiceClient.made


async def test_a_reading_ends_when_nobody_is_left_to_hear_it(discord_bot) -> None:
    harness = await voice_bot(discord_bot, library=True)
    bob = Invoker(name="bob")
    harness.bot._connection.parse_guild_create(guild_payload({harness.invoker.user_id: VOICE_ID,
                                                              bob.user_id: VOICE_ID}))
    await harness.answer(read(harness, "start"), "Reading")
    [voice] = FakeVoiceClient.made
    harness.bot._connection.parse_voice_state_update(voice_state(bob.user_id, None))
    await asyncio.sleep(0.05)
    assert voice.connected and GUILD_ID in harness.bot.playback.readings  # one listener is left
    harness.bot._connection.parse_voice_state_update(voice_state(harness.invoker.user_id, OTHER_VOICE_ID))
    await until(lambda: not voice.connected)
    assert GUILD_ID not in harness.bot.playback.readings


async def test_forget_me_stops_the_speeches_in_that_voice_and_the_queue_plays_on(discord_bot) -> None:
    """Bob speaks with Alice's server voice (playing: its generation is held) and Carol waits with her own clip;
    Alice asks to be forgotten: Bob's speech stops at once and says why, Carol's plays."""
    from tests.discord.test_voice import save_voice

    backend = FakeBackend(hold=True)
    harness = await voice_bot(discord_bot, backend, library=True)
    alice, bob, carol = harness.invoker, Invoker(name="bob"), Invoker(name="carol")
    harness.bot._connection.parse_guild_create(guild_payload({alice.user_id: VOICE_ID, bob.user_id: VOICE_ID,
                                                              carol.user_id: VOICE_ID}))
    harness.service.recent_clips.remember(f"discord:{carol.user_id}", CLIP, None)
    await save_voice(harness, "Alice", alice, scope="server")
    bobs = speak(harness, "In Alice's voice", bob, voice="Alice")
    await harness.answer(bobs, "Speaking in")
    carols = speak(harness, "In my own voice", carol)
    assert "1 before yours" in await harness.answer(carols, "Queued")
    bobs_call, carols_call = await backend.next_call(), await backend.next_call()

    question = harness.voice("forget-me", alice)
    click = await harness.click(question, "Forget me", alice)
    report = await harness.answer(click, "forgotten you")
    assert "Speeches stopped in voice channels: 1" in report
    assert "someone this speech concerns asked the bot to forget them" in await harness.answer(bobs, "Stopped")
    carols_call.release()
    assert "Spoke" in await harness.answer(carols, "Spoke")
    bobs_call.release()
    [voice] = FakeVoiceClient.made
    assert len(voice.played) == 1  # Bob's speech never reached the voice connection: Carol's did


async def test_forget_me_ends_a_reading_whose_default_voice_is_theirs(discord_bot) -> None:
    from tests.discord.test_voice import save_voice

    harness = await voice_bot(discord_bot, library=True)
    alice, bob = harness.invoker, Invoker(name="bob")
    harness.bot._connection.parse_guild_create(guild_payload({alice.user_id: VOICE_ID, bob.user_id: VOICE_ID}))
    await save_voice(harness, "Alice", alice, scope="server")
    read(harness, "start", bob, voice="Alice")
    await until(lambda: GUILD_ID in harness.bot.playback.readings)
    assert harness.bot.playback.readings[GUILD_ID].default.voice.owner == _member(alice)
    click = await harness.click(harness.voice("forget-me", alice), "Forget me", alice)
    await harness.answer(click, "forgotten you")
    assert GUILD_ID not in harness.bot.playback.readings
