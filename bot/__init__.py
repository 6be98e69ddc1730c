"""Chat frontends (Discord, Slack) and the `voicebot` command line: adapters over `commands/`."""
