"""Lists shown in one chat message: as many whole lines as the platform's limit allows, then a count of the rest.

Every adapter has a hard limit on one block of text (a Discord embed's description, a Slack section); a user with
many voices, or an admin reading a busy server's activity, would otherwise get an error instead of a list.
"""

from __future__ import annotations


def fit_lines(lines: list[str], limit: int) -> str:
    """As many whole lines as fit in `limit` characters, then "…and N more" for the lines left out."""
    shown: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        more = f"…and {len(lines) - index} more"
        if used + len(line) + 1 + len(more) > limit:
            shown.append(more)
            break
        shown.append(line)
        used += len(line) + 1
    return "\n".join(shown)
