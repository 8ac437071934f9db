import Contracts
import Forms
import Foundation

/// The web pages, rendered on the server as plain HTML (no script, no build step): the
/// inbox, the approval page with its form, the decided page, the workflow's timeline, the
/// confirmation page of a decision link, and a page for problems. Everything that comes
/// from a request or a workflow is escaped.
enum WebPages {
    // MARK: - Pages

    static func inbox(approver: String, pending: [ApprovalView]) -> String {
        var body = "<h1>Waiting for you</h1><p class=\"muted\">Signed in as \(e(approver))</p>"
        if pending.isEmpty {
            body += "<p>Nothing is waiting for your decision.</p>"
        } else {
            body += "<table class=\"list\"><tr><th>Request</th><th>Step</th><th>From</th><th>Decide before</th></tr>"
            for approval in pending {
                body += "<tr><td><a href=\"/ui/approvals/\(e(approval.id))\">\(e(approval.form?.title ?? approval.workflowType))</a></td>"
                body += "<td>\(e(approval.step))</td><td>\(e(approval.requester))</td><td>\(time(approval.deadline))</td></tr>"
            }
            body += "</table>"
        }
        return page(title: "Inbox", body: body)
    }

    /// A pending approval: its facts, the form, and the votes so far. `problem` is shown
    /// above the form when a submission was refused.
    static func approval(_ approval: ApprovalView, thread messages: [ApprovalThreadMessage], viewer: String, csrfToken: String, problem: String? = nil)
        -> String
    {
        let form = approval.form ?? FormRendering.defaultForm(title: "\(approval.workflowType): \(approval.step)", outcomes: [.approve, .reject])
        var body = nav(approval)
        body += "<p class=\"muted\">\(e(approval.requester)) asks for approval · decide before \(time(approval.deadline))</p>"
        if let problem { body += "<p class=\"problem\" role=\"alert\">\(e(problem))</p>" }
        if approval.votes.contains(where: { $0.approver == viewer }) {
            body +=
                "<h1>\(e(form.title))</h1><p>Your vote is recorded; the approval waits for the others (quorum \(e(approval.policy.quorum.rawValue.replacingOccurrences(of: "_", with: " ")))).</p>"
        } else {
            body += FormRendering(form: form, facts: approval.context).html(action: "/ui/approvals/\(approval.id)", csrfToken: csrfToken)
        }
        body += conversation(messages) + thread(approval)
        return page(title: form.title, body: body)
    }

    /// The approval once it is no longer pending: who decided, how and when.
    static func decided(_ approval: ApprovalView, thread messages: [ApprovalThreadMessage] = [], notice: String? = nil) -> String {
        var body = nav(approval)
        if let notice { body += "<p class=\"notice\" role=\"status\">\(e(notice))</p>" }
        body += "<h1>\(e(approval.form?.title ?? approval.workflowType))</h1>"
        body += "<p class=\"outcome \(e(approval.status.rawValue))\">\(e(outcome(of: approval)))</p>"
        if let comment = approval.comment, !comment.isEmpty { body += "<blockquote>\(e(comment))</blockquote>" }
        body += facts(approval) + conversation(messages) + thread(approval)
        return page(title: "\(approval.status.rawValue.capitalized): \(approval.workflowType)", body: body)
    }

    /// Every approval of one workflow, oldest first, as a list of what happened when.
    static func timeline(workflowID: String, approvals: [ApprovalView]) -> String {
        var entries: [(Date, String)] = []
        for approval in approvals {
            entries.append(
                (approval.createdAt, "Approval of step \(approval.step) requested by \(approval.requester) from \(approval.approvers.joined(separator: ", "))"))
            for (level, escalation) in (approval.policy.policy.escalation ?? []).enumerated() {
                let due = approval.createdAt.addingTimeInterval(TimeInterval(escalation.afterSeconds))
                guard due <= (approval.decidedAt ?? Date()) else { continue }
                entries.append((due, "Escalated (level \(level + 1)) to \(escalation.approvers.joined(separator: ", "))"))
            }
            for vote in approval.votes {
                let behalf = vote.onBehalfOf.map { " on behalf of \($0)" } ?? ""
                let comment = vote.comment.map { ": “\($0)”" } ?? ""
                entries.append((vote.votedAt, "\(vote.approver)\(behalf) voted \(vote.decision) via \(vote.channel)\(comment)"))
            }
            if approval.status != .pending { entries.append((approval.decidedAt ?? approval.deadline, outcome(of: approval))) }
        }
        var body =
            "<nav><a href=\"/ui/inbox\">Inbox</a></nav><h1>Workflow \(e(workflowID))</h1><p class=\"muted\">\(e(approvals.first?.workflowType ?? ""))</p><ol class=\"timeline\">"
        for (at, text) in entries.sorted(by: { $0.0 < $1.0 }) {
            body += "<li><time>\(time(at))</time> \(e(text))</li>"
        }
        return page(title: "Timeline", body: body + "</ol>")
    }

    /// What a decision link will do, with the one button that does it (mail scanners
    /// follow links but do not submit forms).
    static func confirm(_ approval: ApprovalView, decision: Decision, approver: String, action: String) -> String {
        var body = "<h1>\(e(approval.form?.title ?? approval.workflowType))</h1>"
        body += "<p>\(e(approval.requester)) asks for approval · decide before \(time(approval.deadline))</p>" + facts(approval)
        body += "<form method=\"post\" action=\"\(e(action))\"><label for=\"comment\">Comment</label>"
        body += "<textarea id=\"comment\" name=\"comment\" maxlength=\"4000\"></textarea>"
        let style = decision == .reject ? "danger" : "primary"
        body += "<button type=\"submit\" class=\"\(style)\">Confirm: \(e(label(decision))) as \(e(approver))</button></form>"
        return page(title: "Confirm", body: body)
    }

    /// The page a sign-in link opens: its button signs in (a fetch of the link does not).
    static func signIn(_ approval: ApprovalView, approver: String, action: String) -> String {
        var body = "<h1>\(e(approval.form?.title ?? approval.workflowType))</h1>"
        body += "<p>\(e(approval.requester)) asks \(e(approver)) for approval · decide before \(time(approval.deadline))</p>"
        body += "<p>This link signs in once, in this browser, for this workflow's approvals.</p>"
        body += "<form method=\"post\" action=\"\(e(action))\"><button type=\"submit\" class=\"primary\">Sign in as \(e(approver))</button></form>"
        return page(title: "Sign in", body: body)
    }

    /// - Parameter back: where the reader can go on from (nothing when not signed in).
    static func problem(title: String, message: String, back: (label: String, path: String)? = nil) -> String {
        let link = back.map { "<p><a href=\"\(e($0.path))\">\(e($0.label))</a></p>" } ?? ""
        return page(title: title, body: "<h1>\(e(title))</h1><p class=\"problem\" role=\"alert\">\(e(message))</p>" + link)
    }

    // MARK: - Parts

    static func outcome(of approval: ApprovalView) -> String {
        switch approval.status {
        case .pending: return "Waiting for a decision"
        case .expired: return "Expired at \(time(approval.deadline)) without a decision"
        case .cancelled: return "No longer needed: the workflow was cancelled"
        case .approved, .rejected, .changesRequested:
            let by = approval.decidedBy ?? "?"
            let via = approval.channel.map { " via \(channelName($0))" } ?? ""
            let at = approval.decidedAt.map { " at \(time($0))" } ?? ""
            return "\(approval.status.rawValue.replacingOccurrences(of: "_", with: " ").capitalized) by \(by)\(via)\(at)"
        }
    }

    private static func nav(_ approval: ApprovalView) -> String {
        "<nav><a href=\"/ui/inbox\">Inbox</a> · <a href=\"/ui/workflows/\(e(approval.workflowId))/timeline\">Timeline</a></nav>"
    }

    private static func facts(_ approval: ApprovalView) -> String {
        FormRendering(form: approval.form ?? ApprovalForm(title: approval.workflowType), facts: approval.context).factsHTML()
    }

    /// The workflow's conversation: what the agent and approvers wrote, oldest first.
    private static func conversation(_ messages: [ApprovalThreadMessage]) -> String {
        guard !messages.isEmpty else { return "" }
        return "<h2>Conversation</h2><ul class=\"thread\">"
            + messages.map { message in
                let step = message.step.map { " on \(e($0))" } ?? ""
                return
                    "<li><strong>\(e(message.author))</strong> (\(e(message.kind))\(step)) at \(time(message.at))<blockquote>\(e(message.text))</blockquote></li>"
            }.joined() + "</ul>"
    }

    private static func thread(_ approval: ApprovalView) -> String {
        guard !approval.votes.isEmpty else { return "" }
        return "<h2>Votes</h2><ul class=\"thread\">"
            + approval.votes.map { vote in
                let comment = vote.comment.map { "<blockquote>\(e($0))</blockquote>" } ?? ""
                return
                    "<li><strong>\(e(vote.approver))</strong> \(e(vote.decision)) via \(e(channelName(vote.channel))) at \(time(vote.votedAt))\(comment)</li>"
            }.joined() + "</ul>"
    }

    private static func label(_ decision: Decision) -> String {
        decision.rawValue.replacingOccurrences(of: "_", with: " ").capitalized
    }

    private static func channelName(_ channel: String) -> String {
        ["api": "the API", "link": "a decision link", "web": "the web", "slack": "Slack", "policy": "policy"][channel] ?? channel
    }

    private static func time(_ date: Date) -> String {
        e(WireCoding.formatTime(date))
    }

    private static func e(_ text: String) -> String { FormRendering.escapeHTML(text) }

    private static func page(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(e(title)) · HITL</title><style>\(style)</style></head>
        <body><main>\(body)</main></body></html>
        """
    }

    private static let style = """
        body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
        main{max-width:46rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;box-shadow:0 1px 3px #0002}
        h1{font-size:1.4rem;margin:.5rem 0}h2{font-size:1.1rem;margin-top:1.5rem}
        table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e4e7ec;vertical-align:top}
        th{color:#555;font-weight:600;width:35%}.list th{width:auto}
        label{display:block;margin-top:.8rem;font-weight:600}input,select,textarea{font:inherit;padding:.35rem;width:100%;box-sizing:border-box}
        input[type=checkbox]{width:auto}textarea{min-height:4rem}
        button{font:inherit;margin:1rem .5rem 0 0;padding:.5rem 1.2rem;border-radius:6px;border:1px solid #bbb;background:#fff;cursor:pointer}
        button.primary{background:#1f7a3d;color:#fff;border-color:#1f7a3d}button.danger{background:#b42318;color:#fff;border-color:#b42318}
        .muted{color:#667}.problem{background:#fdecea;color:#8a1c12;padding:.6rem .8rem;border-radius:6px}
        .notice{background:#eef4ff;padding:.6rem .8rem;border-radius:6px}.outcome{font-size:1.2rem;font-weight:600}
        .approved{color:#1f7a3d}.rejected,.expired{color:#b42318}blockquote{margin:.3rem 0;padding-left:.8rem;border-left:3px solid #ccd}
        nav{font-size:.9rem}ol.timeline li{margin:.3rem 0}time{color:#667;font-variant-numeric:tabular-nums}
        """
}
