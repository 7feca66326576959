"""Pure Block Kit builders on `slack_sdk.models.blocks`, one module per message family: data in, a message (text
fallback + blocks) or a view out. No I/O. `formatting` holds the shared helpers and Slack's limits."""
