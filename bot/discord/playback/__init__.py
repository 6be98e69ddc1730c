"""Playing speech into Discord voice channels: the audio source (`pcm_source`), each guild's connection and
queue (`player`), who may be joined where (`join`), and the bot's players and read-aloud sessions (`guilds`)."""
