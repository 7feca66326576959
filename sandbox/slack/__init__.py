"""The Slack stand-in: a local Slack Web API over HTTP that records calls and misbehaves on demand, and sends signed
slash commands, clicks and view submissions to the real app. Start at `SlackStandIn` (sandbox/slack/http_server.py).
"""

from sandbox.slack.http_server import SlackStandIn
from sandbox.slack.models import Message, RecordedCall
from sandbox.slack.signed_requests import CommandResult
from sandbox.slack.threaded import SlackStandInThread

__all__ = ["CommandResult", "Message", "RecordedCall", "SlackStandIn", "SlackStandInThread"]
