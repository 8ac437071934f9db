#!/usr/bin/env python3
"""An upstream MCP server for the gateway tests (Python MCP SDK, stdio).

Usage: mcp_upstream.py LOG

Every tool call appends one JSON line to LOG: the tool, its arguments and the request's
_meta, so the test can count what reached the upstream and with what.
"""
import json
import sys

from mcp.server.mcpserver import Context, MCPServer

log_path = sys.argv[1]
server = MCPServer("ledger")


def record(tool, arguments, ctx):
    params = ctx.request_context.params or {}
    meta = dict(params.get("_meta") or {})
    with open(log_path, "a") as log:
        log.write(json.dumps({"tool": tool, "args": arguments, "meta": meta}) + "\n")


@server.tool()
def transfer(payee: str, amount: float, ctx: Context) -> str:
    """Send money to a payee."""
    record("transfer", {"payee": payee, "amount": amount}, ctx)
    return f"sent {amount:g} to {payee}"


@server.tool()
def refund(order: str, amount: float, ctx: Context) -> str:
    """Refund part of an order."""
    record("refund", {"order": order, "amount": amount}, ctx)
    return f"refunded {amount:g} on {order}"


@server.tool()
def ping(text: str, ctx: Context) -> str:
    """Answer pong."""
    record("ping", {"text": text}, ctx)
    return "pong " + text


if __name__ == "__main__":
    server.run()
