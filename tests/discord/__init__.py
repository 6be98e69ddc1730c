"""End-to-end tests of the Discord adapter through discord.py against a local fake Discord API."""
