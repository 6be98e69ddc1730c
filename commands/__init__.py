"""What the bots and the CLI share, whatever the platform: clone jobs, reference-clip intake, health reports.

Nothing here imports discord, slack or torch; `bot/` adapters turn platform events into calls of these modules.
"""
