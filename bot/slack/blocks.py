"""Block Kit pieces every form and answer is built from, within Slack's documented limits.

Slack refuses a whole view or message when one text is over its limit (`invalid_blocks`), so the limits live
here once: option labels 75 characters, option values 150, plain-text labels 2000, section text 3000.
"""

from __future__ import annotations

from typing import Any

OPTION_TEXT_CHARS = 75
OPTION_VALUE_CHARS = 150
SECTION_CHARS = 3000
SLACK_INPUT_CHARS = 3000  # plain_text_input's max_length ceiling


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def option(label: str, value: str | None = None) -> dict[str, Any]:
    """A select or radio option; `value` (what comes back on submission) defaults to the label."""
    return {"text": plain(label[:OPTION_TEXT_CHARS]), "value": (value or label)[:OPTION_VALUE_CHARS]}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text[:SECTION_CHARS])}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(text[:SECTION_CHARS])]}


def text_input(block_id: str, label: str, action_id: str, *, max_length: int, multiline: bool = False,
               optional: bool = False, initial: str | None = None, hint: str | None = None,
               placeholder: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": action_id, "multiline": multiline,
                               "max_length": min(max_length, SLACK_INPUT_CHARS)}
    if initial:
        element["initial_value"] = initial[:element["max_length"]]
    if placeholder:
        element["placeholder"] = plain(placeholder)
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "label": plain(label), "element": element}
    if optional:
        block["optional"] = True
    if hint:
        block["hint"] = plain(hint)
    return block


def modal(callback_id: str, title: str, blocks: list[dict[str, Any]], *, submit: str | None,
          close: str = "Cancel", private_metadata: str = "") -> dict[str, Any]:
    """A modal view; `submit=None` for one that only shows something (a result, a choice of buttons)."""
    view: dict[str, Any] = {"type": "modal", "callback_id": callback_id, "title": plain(title[:24]),
                            "close": plain(close), "blocks": blocks}
    if submit is not None:
        view["submit"] = plain(submit)
    if private_metadata:
        view["private_metadata"] = private_metadata
    return view


def read_value(values: dict[str, Any], block: str, action: str) -> str | None:
    """A text input's value from `view.state.values`."""
    return (values.get(block, {}).get(action) or {}).get("value")


def read_selected(values: dict[str, Any], block: str, action: str) -> str | None:
    """The value of a select's or radio group's chosen option from `view.state.values`."""
    return ((values.get(block, {}).get(action) or {}).get("selected_option") or {}).get("value")


def read_checked(values: dict[str, Any], block: str, action: str) -> list[str]:
    """The values of the ticked checkboxes."""
    return [o.get("value", "") for o in (values.get(block, {}).get(action) or {}).get("selected_options") or []]
