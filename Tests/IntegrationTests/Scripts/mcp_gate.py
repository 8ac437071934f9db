#!/usr/bin/env python3
"""An agent on the official Python MCP client, through `hitl mcp gate` in front of
mcp_upstream.py.

Usage: mcp_gate.py HITL ORCHESTRATOR_URL APPROVAL_URL AGENT_TOKEN APPROVER_TOKEN WORKDIR

Checks: an ungated tool and a call the condition lets by pass straight through; a gated
call is not forwarded before approval and answers "pending"; retried once approved it is
forwarded exactly once, with the receipt, and retried again it is not forwarded again; a
rejection and an expiry forward nothing and say who decided and why; the approver's
changed arguments are the ones forwarded; a grant window lets a second call through and a
call outside it waits; a gateway killed with -9 while a call waits, restarted on the same
state, forwards the call approved meanwhile once. Prints OK, or the first thing that went
wrong and exits 1.
"""
import asyncio
import json
import os
import signal
import sys
import time
import urllib.request

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

HERE = os.path.dirname(os.path.abspath(__file__))


def expect(condition, message):
    if not condition:
        print("FAILED: " + message)
        sys.exit(1)


def http(method, url, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=20) as answer:
        return json.loads(answer.read() or b"{}")


def kill9(marker):
    """Kills with SIGKILL every process whose command line holds `marker` (no procps needed)."""
    killed = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if marker.encode() in cmdline.read() and int(pid) != os.getpid():
                    os.kill(int(pid), signal.SIGKILL)
                    killed += 1
        except OSError:
            pass
    expect(killed == 1, "expected to kill one gateway, killed %d" % killed)


class Run:
    def __init__(self, hitl, orchestrator, approval, agent, approver, workdir):
        self.hitl, self.orchestrator, self.approval, self.agent, self.approver = hitl, orchestrator, approval, agent, approver
        self.log = os.path.join(workdir, "upstream.log")
        self.state = os.path.join(workdir, "gate-state.json")
        self.policy = os.path.join(workdir, "policy.json")
        with open(self.policy, "w") as policy:
            json.dump({
                "approvers": ["manager@bank.example"], "hold_seconds": 2,
                "rules": [
                    {"tool": "transfer", "when": "args.amount > 1000"},
                    {"tool": "refund", "grant": {"minutes": 30, "when": "args.amount <= 100"}},
                    {"tool": "ping", "when": "args.text == 'expire me'", "timeout_seconds": 2},
                    # The admin's template "auto-ping" (put by MCPTests) approves by rule, with no human.
                    {"tool": "ping", "when": "args.text == 'by rule'", "template": "auto-ping"},
                ],
            }, policy)

    def server(self):
        return StdioServerParameters(command=self.hitl, args=[
            "mcp", "gate", "--orchestrator", self.orchestrator, "--token", self.agent, "--policy", self.policy,
            "--state", self.state, "--upstream", f"python3 {HERE}/mcp_upstream.py {self.log}"])

    def forwarded(self, tool, **arguments):
        """The upstream calls of `tool` whose arguments include `arguments`."""
        if not os.path.exists(self.log):
            return []
        with open(self.log) as log:
            calls = [json.loads(line) for line in log if line.strip()]
        return [c for c in calls if c["tool"] == tool and all(c["args"].get(k) == v for k, v in arguments.items())]

    def approval_of(self, workflow):
        for entry in reversed(http("GET", f"{self.orchestrator}/v1/workflows/{workflow}/history", self.agent)["items"]):
            if entry["event"] == "approval_requested":
                return entry["detail"]["approval_id"]
        expect(False, "workflow %s asked no approval" % workflow)

    def decide(self, workflow, decision, comment=None, changes=None):
        approval = self.approval_of(workflow)
        body = {"decision": decision}
        if comment:
            body["comment"] = comment
        if changes:
            body["changes"] = changes
        http("POST", f"{self.approval}/v1/approvals/{approval}/decision", self.approver, body)
        return approval


async def call(session, tool, arguments):
    result = await session.call_tool(tool, arguments)
    text = result.content[0].text if result.content else ""
    return result.is_error, text, result


async def pending(session, tool, arguments):
    failed, text, _ = await call(session, tool, arguments)
    expect(failed and '"pending"' in text, "%s %r was not held: %r" % (tool, arguments, text))
    return json.loads(text)


async def until_answered(session, tool, arguments, seconds=40):
    """Calls again while the answer is pending, as a client retrying does."""
    deadline = time.time() + seconds
    while True:
        failed, text, result = await call(session, tool, arguments)
        if not (failed and '"pending"' in text):
            return failed, text, result
        expect(time.time() < deadline, "%s %r stayed pending" % (tool, arguments))


async def first_session(run):
    async with stdio_client(run.server()) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            expect(set(tools) == {"transfer", "refund", "ping"}, "the upstream's tools are not listed as they are: %r" % set(tools))
            expect("hitl_reason" in tools["transfer"].input_schema["properties"], "a gated tool does not take the agent's reason")

            # Straight through: an ungated call, and a gated tool whose condition surely fails.
            failed, text, _ = await call(session, "ping", {"text": "hello"})
            expect(not failed and text == "pong hello" and len(run.forwarded("ping", text="hello")) == 1, "ping did not pass through: %r" % text)
            failed, text, _ = await call(session, "transfer", {"payee": "ACME", "amount": 10})
            expect(not failed and text == "sent 10 to ACME", "a small transfer was held: %r" % text)

            # An argument posing as what the approval itself shows (the tool's name) is refused, not forwarded.
            failed, text, _ = await call(session, "transfer", {"payee": "SNEAKY", "amount": 5000, "mcp_tool": "ping"})
            expect(failed and "mcp_tool" in text and not run.forwarded("transfer", payee="SNEAKY"), "a colliding argument was taken: %r" % text)

            # Held, then approved: forwarded exactly once, with the receipt; a retry is answered again, not forwarded again.
            held = await pending(session, "transfer", {"payee": "ACME", "amount": 6000, "hitl_reason": "the March invoice"})
            expect(not run.forwarded("transfer", amount=6000), "a gated call was forwarded before its approval")
            approval = run.approval_of(held["workflow_id"])
            shown = http("GET", f"{run.approval}/v1/approvals/{approval}", run.approver)["context"]
            expect(shown.get("mcp_tool") == "transfer" and shown.get("amount") == 6000 and shown.get("mcp_reason") == "the March invoice",
                   "the approval does not show the tool, the arguments and the reason: %r" % shown)
            run.decide(held["workflow_id"], "approve", "fine")
            failed, text, result = await until_answered(session, "transfer", {"payee": "ACME", "amount": 6000, "hitl_reason": "asked again"})
            expect(not failed and text == "sent 6000 to ACME", "the approved call did not answer the upstream's result: %r" % text)
            sent = run.forwarded("transfer", amount=6000)
            expect(len(sent) == 1, "the approved call was forwarded %d times" % len(sent))
            expect(len(sent[0]["meta"].get("hitl/receipt", "").split(".")) == 3, "the upstream got no receipt: %r" % sent[0]["meta"])
            failed, text, _ = await call(session, "transfer", {"payee": "ACME", "amount": 6000})
            expect(not failed and text == "sent 6000 to ACME" and len(run.forwarded("transfer", amount=6000)) == 1,
                   "a retry after the answer was forwarded again or answered differently: %r" % text)

            # Rejected: nothing forwarded; the error says who and why.
            held = await pending(session, "transfer", {"payee": "NEWCO", "amount": 7000})
            run.decide(held["workflow_id"], "reject", "not this month")
            failed, text, _ = await until_answered(session, "transfer", {"payee": "NEWCO", "amount": 7000})
            expect(failed and "manager@bank.example" in text and "not this month" in text, "the rejection was not reported: %r" % text)
            expect(not run.forwarded("transfer", amount=7000), "a rejected call was forwarded")

            # Approved with changes: the approver's arguments are forwarded, not the agent's.
            held = await pending(session, "transfer", {"payee": "BIGCO", "amount": 8000})
            run.decide(held["workflow_id"], "approve_with_changes", "half now", changes={"amount": 2500})
            failed, text, _ = await until_answered(session, "transfer", {"payee": "BIGCO", "amount": 8000})
            expect(not failed and text == "sent 2500 to BIGCO", "the changed arguments were not used: %r" % text)
            expect(not run.forwarded("transfer", amount=8000) and len(run.forwarded("transfer", payee="BIGCO")) == 1, "the agent's arguments were forwarded")

            # A grant window: the approval of one refund lets small refunds through for 30 minutes, not large ones.
            held = await pending(session, "refund", {"order": "A-1", "amount": 50})
            run.decide(held["workflow_id"], "approve")
            failed, text, _ = await until_answered(session, "refund", {"order": "A-1", "amount": 50})
            expect(not failed and text == "refunded 50 on A-1", "the approved refund did not run: %r" % text)
            failed, text, result = await call(session, "refund", {"order": "A-2", "amount": 60})
            expect(not failed and text == "refunded 60 on A-2", "a refund inside the grant was held: %r" % text)
            expect(run.forwarded("refund", order="A-2")[0]["meta"].get("hitl/granted_by") == held["workflow_id"], "the granted call does not name its grant")
            await pending(session, "refund", {"order": "A-3", "amount": 500})
            expect(not run.forwarded("refund", order="A-3"), "a refund outside the grant was forwarded")

            # Expired: nobody decided within the approval's 2 s.
            failed, text, _ = await until_answered(session, "ping", {"text": "expire me"})
            expect(failed and "timed_out" in text, "an expired call was not refused as such: %r" % text)
            expect(not run.forwarded("ping", text="expire me"), "an expired call was forwarded")

            # A workflow that completes on a rule is no human's approval: nothing is forwarded.
            failed, text, _ = await until_answered(session, "ping", {"text": "by rule"})
            expect(failed and "without a human's approval" in text, "a call approved by a rule was taken: %r" % text)
            expect(not run.forwarded("ping", text="by rule"), "a call approved by a rule was forwarded")
    return run


async def killed_session(run):
    """A call held when the gateway is killed with -9."""
    try:
        async with stdio_client(run.server()) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                waiting = asyncio.create_task(call(session, "transfer", {"payee": "LATE", "amount": 9000}))
                await asyncio.sleep(1)
                kill9(run.state)
                await asyncio.wait_for(waiting, 10)
    except Exception:
        pass  # the gateway is gone mid-call, as intended


async def second_session(run):
    # Approved while no gateway runs.
    waiting = http("GET", f"{run.orchestrator}/v1/workflows?status=waiting_approval&limit=50", run.agent)["items"]
    late = [w for w in waiting if http("GET", f"{run.orchestrator}/v1/workflows/{w['id']}", run.agent)["input"].get("payee") == "LATE"]
    expect(len(late) == 1, "the held call's workflow was not found once: %d" % len(late))
    run.decide(late[0]["id"], "approve")
    async with stdio_client(run.server()) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            failed, text, _ = await until_answered(session, "transfer", {"payee": "LATE", "amount": 9000})
            expect(not failed and text == "sent 9000 to LATE", "the call approved during the restart was not made: %r" % text)
            failed, text, _ = await call(session, "transfer", {"payee": "ACME", "amount": 6000})
            expect(not failed and text == "sent 6000 to ACME", "the call made before the restart was not answered again: %r" % text)
    expect(len(run.forwarded("transfer", payee="LATE")) == 1, "the call approved during the restart was forwarded %d times" % len(run.forwarded("transfer", payee="LATE")))
    expect(len(run.forwarded("transfer", amount=6000)) == 1, "a restart made an approved call twice")


async def main(*argv):
    run = Run(*argv)
    await first_session(run)
    await killed_session(run)
    await second_session(run)
    print("OK")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
