import Contracts
import Forms
import Testing

@Suite struct FormTests {
    static let form = ApprovalForm(
        title: "Wire transfer to <ACME>", description: "Check the payee & amount.", facts: ["amount", "payee"],
        fields: [
            .init(name: "reason", type: .select, label: "Reason", required: true, options: ["budget", "risk"]),
            .init(name: "limit", type: .number, label: "Limit", min: 0, max: 10_000),
            .init(name: "note", type: .textarea, label: "Note", max: 20),
            .init(name: "urgent", type: .boolean, label: "Urgent", default: false),
            .init(name: "pay_on", type: .date, label: "Pay on"),
        ],
        buttons: [.init(decision: .approve, label: "Approve", style: .primary), .init(decision: .reject, label: "Reject", style: .danger)])
    static let facts: JSONObject = ["amount": 6000, "payee": "<script>alert(1)</script>", "internal": "internal-only"]

    @Test func submittedValuesAreCheckedAgainstTheFormWhateverTheChannel() throws {
        let ok = FormValidation.check(["reason": "risk", "limit": 500, "pay_on": "2026-12-01"], against: Self.form)
        #expect(try ok.get() == ["reason": "risk", "limit": 500, "pay_on": "2026-12-01", "urgent": false])
        let bad = FormValidation.check(
            ["limit": 20_000, "note": .string(String(repeating: "x", count: 30)), "colour": "red", "pay_on": "soon"], against: Self.form)
        guard case .failure(let problems) = bad else { Issue.record("accepted bad values"); return }
        #expect(
            problems.problems == [
                "colour is not a field of this form", "reason is required", "limit must be at most 10000",
                "note must be at most 20 characters", "pay_on must be a date (YYYY-MM-DD)",
            ])
        guard case .failure(let wrongType) = FormValidation.check(["reason": "other", "limit": "500"], against: Self.form) else { return }
        #expect(wrongType.problems == ["reason must be one of budget, risk", "limit must be a number"])
    }

    @Test func changesFromTheWebFormAreTypedLikeTheInputAndOnlyWhatChangedCounts() throws {
        let input: JSONObject = ["amount": 6000, "to": "ACME GmbH", "urgent": false, "lines": .array([1, 2])]
        let asked = try FormInput.changes(
            ["change.amount": " 5500 ", "change.to": "ACME GmbH", "change.urgent": "true", "comment": "ok", "decision": "approve_with_changes"], to: input
        ).get()
        #expect(asked == ["amount": 5500, "urgent": true])
        #expect(try FormInput.changes(["change.amount": "6000"], to: input).get().isEmpty)
        let refused = FormInput.changes(["change.amount": "lots", "change.urgent": "maybe", "change.lines": "3", "change.nope": "x"], to: input)
        guard case .failure(let problems) = refused else {
            Issue.record("accepted: \(refused)")
            return
        }
        #expect(
            problems.problems == [
                "amount must be a number", "lines is not an input this form can change", "nope is not an input this form can change",
                "urgent must be true or false",
            ])
        // The page offers the plain facts for editing only when the form offers the outcome.
        let offering = ApprovalForm(title: "T", buttons: [.init(decision: .approve, label: "A"), .init(decision: .approveWithChanges, label: "C")])
        let page = FormRendering(form: offering, facts: input).html(action: "/x", csrfToken: "t")
        #expect(page.contains(#"name="change.amount" value="6000""#) && page.contains(#"<option value="false" selected>"#) && !page.contains("change.lines"))
        #expect(!FormRendering(form: ApprovalForm(title: "T"), facts: input).html(action: "/x", csrfToken: "t").contains("change."))
    }

    @Test func oneFormRendersToHTMLEmailMarkdownAndSlack() throws {
        let rendering = FormRendering(form: Self.form, facts: Self.facts)
        let links = ["approve": "https://hitl.example/v1/links/a", "reject": "https://hitl.example/v1/links/r"]

        let html = rendering.html(action: "/approvals/1/decide", csrfToken: "t0k")
        #expect(html.contains("<h1>Wire transfer to &lt;ACME&gt;</h1>"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>"))
        #expect(!html.contains("internal-only"))  // only the facts the form names
        #expect(html.contains(#"<input type="hidden" name="csrf_token" value="t0k">"#))
        #expect(html.contains(#"<select id="reason" name="reason" required>"#))
        #expect(html.contains(#"<input type="number" id="limit" name="limit" value="" min="0" max="10000">"#))
        #expect(html.contains(#"<button type="submit" name="decision" value="reject" class="danger" formnovalidate>Reject</button>"#))

        let text = rendering.plainText(links: links)
        #expect(text.hasPrefix("Wire transfer to <ACME>\nCheck the payee & amount.\n\namount: 6000\npayee: <script>alert(1)</script>"))
        #expect(text.contains("Approve: https://hitl.example/v1/links/a"))
        #expect(rendering.emailHTML(links: links).contains(#"<a href="https://hitl.example/v1/links/r">Reject</a>"#))

        let markdown = rendering.markdown(links: links)
        #expect(markdown.hasPrefix("**Wire transfer to \\<ACME\\>**"))
        #expect(markdown.contains("[Approve](https://hitl.example/v1/links/a) · [Reject](https://hitl.example/v1/links/r)"))

        let blocks = rendering.slackBlocks(approvalID: "ap-1")
        #expect(blocks.count == 4)
        #expect(blocks.last?.objectValue?["type"] == "actions")
        guard case .array(let elements)? = blocks.last?.objectValue?["elements"] else { Issue.record("no buttons"); return }
        #expect(elements.first?.objectValue?["value"] == "ap-1:approve" && elements.last?.objectValue?["style"] == "danger")
    }

    @Test func slackRenderingStaysWithinSlacksLimits() {
        let huge = ApprovalForm(
            title: String(repeating: "T", count: 400), description: String(repeating: "d", count: 5000),
            buttons: (0..<40).map { .init(decision: $0.isMultiple(of: 2) ? .approve : .reject, label: String(repeating: "b", count: 100)) })
        var facts: JSONObject = [:]
        for index in 0..<600 { facts["fact\(index)"] = .string(String(repeating: "v", count: 3000)) }
        let blocks = FormRendering(form: huge, facts: facts).slackBlocks(approvalID: "a")
        #expect(blocks.count <= FormRendering.SlackLimits.blocks)
        for block in blocks.compactMap(\.objectValue) {
            if block["type"] == "header", case .string(let text)? = block["text"]?.objectValue?["text"] { #expect(text.count <= 150) }
            if case .string(let text)? = block["text"]?.objectValue?["text"] { #expect(text.count <= 3000) }
            if case .array(let fields)? = block["fields"] {
                #expect(fields.count <= 10)
                for field in fields { if case .string(let text)? = field.objectValue?["text"] { #expect(text.count <= 2000) } }
            }
            if case .array(let elements)? = block["elements"] {
                #expect(elements.count <= 25)
                for element in elements {
                    if case .string(let label)? = element.objectValue?["text"]?.objectValue?["text"] { #expect(label.count <= 75) }
                }
            }
        }
        #expect(blocks.last?.objectValue?["type"] == "actions")
    }
}
