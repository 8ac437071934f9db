#!/usr/bin/env python3
"""An agent on the official Python MCP client, against `hitl mcp` over stdio.

Usage: mcp_agent.py stdio HITL ORCHESTRATOR_URL APPROVAL_URL AGENT_TOKEN APPROVER_TOKEN
       mcp_agent.py http - ORCHESTRATOR_URL APPROVAL_URL AGENT_TOKEN APPROVER_TOKEN
(stdio: `hitl mcp` as a child process; http: the orchestrator's /mcp, Streamable HTTP.)

Requests approvals through MCP, has a human (the approver's token, over the approval
API) approve one and reject another, and checks what wait_for_decision answers, that a
timeout says pending, and that the agent can do nothing over MCP that its token cannot
over HTTP. Prints OK, or the first thing that went wrong and exits 1.
"""
import asyncio
import json
import sys
import urllib.request

from contextlib import asynccontextmanager

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


def expect(condition, message):
    if not condition:
        print("FAILED: " + message)
        sys.exit(1)


def decide(approval_url, token, approval_id, decision, comment):
    body = json.dumps({"decision": decision, "comment": comment}).encode()
    request = urllib.request.Request(
        f"{approval_url}/v1/approvals/{approval_id}/decision", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=20) as answer:
        expect(answer.status == 200, "the approver's decision was not taken: %d" % answer.status)


@asynccontextmanager
async def connect(transport, hitl, orchestrator, token):
    if transport == "stdio":
        server = StdioServerParameters(command=hitl, args=["mcp", "--orchestrator", orchestrator, "--token", token])
        async with stdio_client(server) as (read, write):
            yield read, write
    else:
        async with create_mcp_http_client(headers={"Authorization": "Bearer " + token}) as http:
            async with streamable_http_client(orchestrator + "/mcp", http_client=http, terminate_on_close=False) as (read, write):
                yield read, write


async def main(transport, hitl, orchestrator, approval_url, agent_token, approver_token):
    async with connect(transport, hitl, orchestrator, agent_token) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()

            async def call(name, arguments, **options):
                result = await session.call_tool(name, arguments, **options)
                text = result.content[0].text if result.content else ""
                return result.is_error, (json.loads(text) if not result.is_error else text)

            names = {tool.name for tool in (await session.list_tools()).tools}
            expect(names == {"request_approval", "wait_for_decision", "get_workflow", "list_my_workflows", "post_message", "submit_task_result"},
                   "unexpected tools: %r" % names)

            failed, asked = await call("request_approval", {
                "action": "Wire 6000 EUR to ACME GmbH", "summary": "The March invoice.",
                "facts": {"amount": 6000, "payee": "ACME GmbH"}, "approvers": ["manager@bank.example"]})
            expect(not failed and asked.get("approval_id"), "request_approval failed: %r" % asked)
            workflow, approval = asked["workflow_id"], asked["approval_id"]

            # Nobody decided yet: pending, never approval.
            failed, early = await call("wait_for_decision", {"workflow_id": workflow, "timeout_seconds": 2})
            expect(not failed and early["status"] == "pending", "a wait with no decision said %r" % early)

            decide(approval_url, approver_token, approval, "approve", "fine by me")
            progress = []

            async def on_progress(value, total, message):
                progress.append(message)

            failed, decided = await call("wait_for_decision", {"workflow_id": workflow, "timeout_seconds": 30}, progress_callback=on_progress)
            expect(not failed and decided["status"] == "approved", "the approval was not reported: %r" % decided)
            expect("manager@bank.example" in str(decided.get("decided_by")) and decided.get("comment") == "fine by me",
                   "who decided, or the comment, is missing: %r" % decided)
            expect(len(str(decided.get("receipt", "")).split(".")) == 3, "the decision's signed receipt is missing: %r" % decided)

            failed, second = await call("request_approval", {
                "action": "Wire 90000 EUR to NEWCO Ltd", "facts": {"amount": 90000}, "approvers": ["manager@bank.example"]})
            expect(not failed and second.get("approval_id"), "the second request failed: %r" % second)
            waiting = asyncio.create_task(call("wait_for_decision", {"workflow_id": second["workflow_id"], "timeout_seconds": 30}, progress_callback=on_progress))
            await asyncio.sleep(2.5)
            decide(approval_url, approver_token, second["approval_id"], "reject", "too much for one transfer")
            failed, rejected = await waiting
            expect(not failed and rejected["status"] == "rejected" and rejected.get("comment") == "too much for one transfer",
                   "the rejection was not reported with its reason: %r" % rejected)
            expect(progress or transport == "http", "no progress notification was sent while waiting")

            # The same request again is the same workflow.
            failed, again = await call("request_approval", {
                "action": "Wire 6000 EUR to ACME GmbH", "summary": "The March invoice.",
                "facts": {"amount": 6000, "payee": "ACME GmbH"}, "approvers": ["manager@bank.example"]})
            expect(not failed and again["workflow_id"] == workflow, "a repeated request made a new workflow: %r" % again)

            # Nothing over MCP that the token cannot do over HTTP, refused for the same reason.
            failed, other = await call("get_workflow", {"workflow_id": "00000000-0000-4000-8000-000000000000"})
            expect(failed and "404" in other and "no workflow" in other, "another's or no workflow was not refused: %r" % other)
            failed, forged = await call("submit_task_result", {"workflow_id": workflow, "step": "approve", "attempt": 1, "token": "forged", "outcome": "succeeded"})
            expect(failed and "403" in forged and "token of its attempt" in forged, "a forged task result was not refused: %r" % forged)
            failed, nope = await call("decide", {"approval_id": approval, "decision": "approve"})
            expect(failed and "no tool" in nope, "an agent found a way to decide: %r" % nope)

            history = await session.read_resource(f"hitl://workflows/{workflow}/history")
            expect('"approved"' in history.contents[0].text, "the history resource lacks the approval")
            mine = {entry.uri for entry in (await session.list_resources()).resources}
            expect(any(workflow in str(uri) for uri in mine), "the agent's workflow is not among its resources")
    print("OK")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
