"""An installed app's handlers, autodiscovered like admin.py."""

from __future__ import annotations

from executions.handlers import HandlerContext, handler


@handler("inventory.sync")
def sync(ctx: HandlerContext) -> dict:
    return {"synced": True}
