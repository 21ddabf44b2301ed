"""A deployer's handler module, as REDRIVE_HANDLER_MODULES would name it."""

from __future__ import annotations

from executions.handlers import HandlerContext, handler


class CardDeclined(Exception):
    pass


@handler("billing.charge")
def charge(ctx: HandlerContext) -> dict:
    amount = int(ctx.params["amount"])
    ctx.log("info", f"charging {amount} for {ctx.payload['customer']}")
    if amount > 5000:
        ctx.log("error", "over the limit")
        raise CardDeclined(f"amount {amount} exceeds limit 5000")
    return {"charged": amount, "attempt": ctx.attempt, "key": ctx.key}


@handler("billing.refund")
def refund(ctx: HandlerContext) -> dict:
    return {"refunded": ctx.params.get("amount")}
