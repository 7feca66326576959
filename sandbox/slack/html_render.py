"""Block Kit and mrkdwn as HTML, the way Slack's client shows them, for the channel page (sandbox/slack/web_page.py).

The one place that knows how a block looks in a browser: header, section (text, fields, accessory), context,
actions (buttons with their style and confirm dialog), divider, image, and a readable fallback for the rest. mrkdwn:
*bold*, _italic_, ~strike~, `code`, ```blocks```, <url|text> links, <@U..> mentions, <#C..> channels,
<!subteam^S..> groups, and the emoji shortcodes the bot uses.

Everything a message carries is escaped here: the page inserts the result as HTML. A button becomes a `<button>`
whose data attributes name the message, block and action, and carry its confirm dialog as JSON; the page's script
sends the click back to the server, which looks the button up in the stand-in's copy of the message.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

JsonDict = dict[str, Any]
UserNames = Mapping[str, str]

__all__ = ["EMOJI", "blocks_html", "mrkdwn_html", "text_html"]

# The shortcodes the bot's messages use, and a few common ones: (emoji, fallback). Status marks in DRAWN are drawn
# with CSS (class `e-<name>`), so they look alike everywhere; the others show the emoji, or, where the browser has
# no colour emoji font (a headless Chromium in CI), the fallback: a symbol that common fonts have.
EMOJI = {
    "white_circle": ("\u26aa", "o"),
    "large_green_circle": ("\U0001f7e2", "o"),
    "red_circle": ("\U0001f534", "o"),
    "white_check_mark": ("\u2705", "\u2714"),
    "x": ("\u274c", "\u2715"),
    "hourglass_flowing_sand": ("\u23f3", "\u25f7"),
    "no_entry_sign": ("\U0001f6ab", "\u2298"),
    "no_entry": ("\u26d4", "\u2296"),
    "hourglass": ("\u231b", "\u25f7"),
    "fast_forward": ("\u23e9", "\u00bb"),
    "arrows_counterclockwise": ("\U0001f504", "\u27f3"),
    "raised_hand": ("\u270b", "\u261d"),
    "calendar": ("\U0001f4c6", "\u25a6"),
    "leftwards_arrow_with_hook": ("\u21a9\ufe0f", "\u21a9"),
    "recycle": ("\u267b\ufe0f", "\u267b"),
    "grey_question": ("\u2754", "?"),
    "warning": ("\u26a0\ufe0f", "\u26a0"),
    "rotating_light": ("\U0001f6a8", "!"),
    "rocket": ("\U0001f680", "\u2197"),
    "information_source": ("\u2139\ufe0f", "\u2139"),
    "stopwatch": ("\u23f1\ufe0f", "\u25f7"),
    "heavy_check_mark": ("\u2714\ufe0f", "\u2714"),
    "tada": ("\U0001f389", "*"),
    "eyes": ("\U0001f440", "\u25c9"),
    "+1": ("\U0001f44d", "+1"),
    "thumbsup": ("\U0001f44d", "+1"),
}
DRAWN = frozenset(
    {"white_circle", "large_green_circle", "red_circle", "white_check_mark", "x", "hourglass_flowing_sand"}
    | {"no_entry_sign", "no_entry"}
)

_CODE = re.compile(r"```(.*?)```|`([^`\n]+)`", re.DOTALL)
_LINK = re.compile(r"<([^<>|\n]+)(?:\|([^<>\n]*))?>")
_EMOJI = re.compile(r":([a-z0-9_+-]+):")
# Slack's rule: a marker opens after start, space or punctuation, and closes before end, space or punctuation.
_STYLES = (
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])"), "b"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])"), "i"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])"), "s"),
)
_HOLD = "\ue000{}\ue001"  # placeholder for a piece already rendered (code, link): private-use characters
_HELD = re.compile("\ue000(\\d+)\ue001")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _plain(text: str) -> str:
    """Text as Slack shows it: its entities (&amp; &lt; &gt;) decoded, then escaped for HTML."""
    return _esc(html.unescape(text))


def emoji_html(name: str) -> str | None:
    known = EMOJI.get(name)
    if known is None:
        return None
    char, fallback = known
    drawn = " drawn" if name in DRAWN else ""
    return (
        f'<span class="emoji{drawn} e-{_esc(name)}" title=":{_esc(name)}:" data-fallback="{_esc(fallback)}" role="img" '
        f'aria-label="{_esc(name)}">{char}</span>'
    )


def _emoji(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        return emoji_html(match.group(1)) or match.group(0)

    return _EMOJI.sub(replace, text)


def _link(target: str, label: str | None, users: UserNames) -> str:
    if target.startswith("@"):
        user = target[1:]
        name = label or users.get(user, user)
        return f'<span class="mention" data-user="{_esc(user)}">@{_plain(name)}</span>'
    if target.startswith("#"):
        channel = target[1:]
        return f'<span class="mention channel">#{_plain(label or channel.lower())}</span>'
    if target.startswith("!subteam^"):
        group = target.removeprefix("!subteam^")
        return f'<span class="mention group">@{_plain(label or group)}</span>'
    if target.startswith("!date^"):
        return _plain(label or target)
    if target.startswith("!"):
        return f'<span class="mention">@{_plain(target[1:])}</span>'
    href = html.unescape(target)
    if not href.startswith(("http://", "https://", "mailto:")):  # not a link Slack would make: shown as text
        return _plain(label) if label else _plain(f"<{target}>")
    return f'<a href="{_esc(href)}" target="_blank" rel="noopener noreferrer">{_plain(label or target)}</a>'


def mrkdwn_html(text: str, users: UserNames | None = None) -> str:
    """Slack mrkdwn as HTML: code first (nothing inside is formatted), then links and mentions, then styles and
    emoji over the rest. Newlines stay newlines; the page shows text with `white-space: pre-wrap`."""
    users = users or {}
    held: list[str] = []

    def hold(rendered: str) -> str:
        held.append(rendered)
        return _HOLD.format(len(held) - 1)

    def code(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return hold(f"<pre>{_plain(match.group(1).strip(chr(10)))}</pre>")
        return hold(f"<code>{_plain(match.group(2))}</code>")

    text = text.replace("\ue000", "").replace("\ue001", "")  # the placeholders' markers are ours alone
    text = _CODE.sub(code, text)
    text = _LINK.sub(lambda m: hold(_link(m.group(1), m.group(2), users)), text)
    text = _plain(text)
    for pattern, tag in _STYLES:
        text = pattern.sub(lambda m, tag=tag: f"<{tag}>{m.group(1)}</{tag}>", text)
    text = _emoji(text)
    return _HELD.sub(lambda m: held[int(m.group(1))], text)  # a held piece never holds another


def text_html(obj: Any, users: UserNames | None = None) -> str:
    """A text object (plain_text or mrkdwn) or a bare string, as HTML."""
    if isinstance(obj, str):
        return mrkdwn_html(obj, users)
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn_html(text, users)
    # plain_text: entities are not special, emoji are (when `emoji` is not false)
    rendered = _esc(text)
    return _emoji(rendered) if obj.get("emoji", True) else rendered


def _confirm_json(confirm: Any) -> str:
    """A confirm object as the page's dialog reads it: plain strings only."""
    if not isinstance(confirm, dict):
        return ""

    def plain(obj: Any) -> str:
        if isinstance(obj, dict):
            return html.unescape(str(obj.get("text", ""))) if obj.get("type") == "mrkdwn" else str(obj.get("text", ""))
        return str(obj or "")

    dialog = {
        "title": plain(confirm.get("title")) or "Are you sure?",
        "text": plain(confirm.get("text")),
        "confirm": plain(confirm.get("confirm")) or "Yes",
        "deny": plain(confirm.get("deny")) or "Cancel",
        "style": str(confirm.get("style") or ""),
    }
    return json.dumps(dialog, ensure_ascii=False)


class _Renderer:
    def __init__(self, message_ts: str, users: UserNames, interactive: bool) -> None:
        self.message_ts = message_ts
        self.users = users
        self.interactive = interactive

    def element(self, element: JsonDict, block_id: str) -> str:
        kind = element.get("type")
        if kind == "button":
            return self.button(element, block_id)
        if kind == "image":
            return (
                f'<img class="inline-image" src="{_esc(str(element.get("image_url", "")))}" '
                f'alt="{_esc(str(element.get("alt_text", "")))}">'
            )
        if kind in ("mrkdwn", "plain_text"):
            return f"<span>{text_html(element, self.users)}</span>"
        if kind == "overflow":
            return '<span class="control">⋯</span>'
        label = text_html(element.get("placeholder"), self.users) or _esc(str(kind))
        return f'<span class="control">{label} ▾</span>'

    def button(self, element: JsonDict, block_id: str) -> str:
        style = element.get("style")
        classes = "button" + (f" {style}" if style in ("primary", "danger") else "")
        label = text_html(element.get("text"), self.users)
        url = element.get("url")
        if url:
            return f'<a class="{classes}" href="{_esc(str(url))}" target="_blank" rel="noopener noreferrer">{label}</a>'
        attributes = {
            "data-message-ts": self.message_ts,
            "data-block-id": block_id,
            "data-action-id": str(element.get("action_id", "")),
        }
        confirm = _confirm_json(element.get("confirm"))
        if confirm:
            attributes["data-confirm"] = confirm
        rendered = " ".join(f'{name}="{_esc(value)}"' for name, value in attributes.items())
        disabled = "" if self.interactive else " disabled"
        return f'<button type="button" class="{classes}" {rendered}{disabled}>{label}</button>'

    def block(self, block: JsonDict) -> str:
        kind = str(block.get("type"))
        block_id = str(block.get("block_id", ""))
        renderers: dict[str, Callable[[JsonDict, str], str]] = {
            "header": self._header,
            "section": self._section,
            "context": self._context,
            "actions": self._actions,
            "divider": self._divider,
            "image": self._image,
            "input": self._input,
            "rich_text": self._rich_text,
        }
        render = renderers.get(kind)
        if render is None:
            return f'<div class="block unknown">[{_esc(kind)} block]</div>'
        return render(block, block_id)

    def _header(self, block: JsonDict, block_id: str) -> str:
        return f'<div class="block header">{text_html(block.get("text"), self.users)}</div>'

    def _section(self, block: JsonDict, block_id: str) -> str:
        parts = []
        if block.get("text"):
            parts.append(f'<div class="text">{text_html(block.get("text"), self.users)}</div>')
        fields = block.get("fields") or []
        if fields:
            cells = "".join(f'<div class="field">{text_html(field, self.users)}</div>' for field in fields)
            parts.append(f'<div class="fields">{cells}</div>')
        accessory = block.get("accessory")
        body = f'<div class="section-body">{"".join(parts)}</div>'
        if accessory:
            body += f'<div class="accessory">{self.element(accessory, block_id)}</div>'
        return f'<div class="block section">{body}</div>'

    def _context(self, block: JsonDict, block_id: str) -> str:
        elements = "".join(self.element(element, block_id) for element in block.get("elements", []))
        return f'<div class="block context">{elements}</div>'

    def _actions(self, block: JsonDict, block_id: str) -> str:
        elements = "".join(self.element(element, block_id) for element in block.get("elements", []))
        return f'<div class="block actions">{elements}</div>'

    def _divider(self, block: JsonDict, block_id: str) -> str:
        return '<hr class="block divider">'

    def _image(self, block: JsonDict, block_id: str) -> str:
        title = text_html(block.get("title"), self.users)
        caption = f'<div class="caption">{title}</div>' if title else ""
        return (
            f'<div class="block image">{caption}<img src="{_esc(str(block.get("image_url", "")))}" '
            f'alt="{_esc(str(block.get("alt_text", "")))}"></div>'
        )

    def _input(self, block: JsonDict, block_id: str) -> str:
        label = text_html(block.get("label"), self.users)
        return f'<div class="block input"><b>{label}</b> {self.element(block.get("element") or {}, block_id)}</div>'

    def _rich_text(self, block: JsonDict, block_id: str) -> str:
        return f'<div class="block rich-text text">{_esc(_rich_text(block))}</div>'


def _rich_text(element: Any) -> str:
    if not isinstance(element, dict):
        return ""
    if isinstance(element.get("text"), str):
        return element["text"]
    if element.get("type") == "user":
        return f"@{element.get('user_id', '')}"
    if element.get("type") == "link":
        return str(element.get("url", ""))
    return "".join(_rich_text(item) for item in element.get("elements", []))


def blocks_html(
    blocks: list[JsonDict], *, message_ts: str, users: UserNames | None = None, interactive: bool = True
) -> str:
    """A message's blocks as HTML; its buttons name `message_ts` so a click finds the message again."""
    renderer = _Renderer(message_ts, users or {}, interactive)
    return "".join(renderer.block(block) for block in blocks if isinstance(block, dict))
