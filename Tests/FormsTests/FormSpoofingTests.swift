import Contracts
import Forms
import Testing

/// Everything in a form comes from the agent that asks for approval. These check that none
/// of it can change what a button on the approver's page (or a Slack or chat message) does.
@Suite struct FormSpoofingTests {
    /// A quote followed by a combining mark: one Swift `Character` that is not `"`, yet the
    /// browser's parser sees the quote and leaves the attribute.
    static let smuggled = "q\"\u{301} name=decision value=approve hidden y=\"\u{301}"

    @Test func escapingWorksPerUnicodeScalarNotPerCharacter() {
        let html = FormRendering.escapeHTML(Self.smuggled)
        #expect(!html.unicodeScalars.contains("\""))
        #expect(html.contains("&quot;\u{301}"))
        #expect(!FormRendering.escapeHTML("<\u{301}script>").unicodeScalars.contains("<"))
        #expect(!FormRendering.escapeHTML("'\u{301}").unicodeScalars.contains("'"))
        #expect(!FormRendering.escapeSlack("<\u{301}!channel>").unicodeScalars.contains("<"))
        #expect(FormRendering.escapeSlack("a & <b>") == "a &amp; &lt;b&gt;")
        #expect(FormRendering.escapeMarkdown("[\u{301}x](y)") == "\\[\u{301}x\\]\\(y\\)")
    }

    @Test func freeTextEverywhereOnThePageStaysText() {
        let form = ApprovalForm(
            title: Self.smuggled, description: Self.smuggled, facts: ["payee"],
            fields: [.init(name: "reason", type: .select, label: Self.smuggled, default: .string(Self.smuggled), options: [Self.smuggled])],
            buttons: [.init(decision: .approve, label: Self.smuggled), .init(decision: .reject, label: "Reject")])
        let html = FormRendering(form: form, facts: ["payee": .string(Self.smuggled)]).html(action: "/x", csrfToken: "t")
        // The only decision controls are the two buttons.
        #expect(html.components(separatedBy: "name=\"decision\"").count - 1 == 2)
        // The payload stays text: its quotes are entities, so it opens no attribute or input.
        #expect(html.components(separatedBy: "<input").count - 1 == 1)  // the CSRF token
        let scalars = Array(html.unicodeScalars)
        #expect(!zip(scalars, scalars.dropFirst()).contains { $0 == "\"" && $1 == "\u{301}" })
        let email = FormRendering(form: form, facts: ["payee": .string(Self.smuggled)]).emailHTML(links: ["reject": "https://h/r"])
        #expect(!email.unicodeScalars.contains("\"") || email.components(separatedBy: "\"").count - 1 == 2)  // only the link's href
        let slack = FormRendering(form: ApprovalForm(title: "T", description: "<!channel> <https://evil|click>"), facts: ["payee": "<@U1>"]).slackBlocks(
            approvalID: "a")
        let texts =
            slack.compactMap { $0.objectValue?["text"]?.objectValue?["text"]?.stringValue }
            + slack.compactMap { block -> String? in
                guard case .array(let fields)? = block.objectValue?["fields"] else { return nil }
                return fields.compactMap { $0.objectValue?["text"]?.stringValue }.joined()
            }
        #expect(!texts.joined().unicodeScalars.contains("<"))
        let modal = FormRendering(
            form: ApprovalForm(
                title: "T", description: "<!here>", fields: [.init(name: Self.smuggled, type: .text, label: "L"), .init(name: "ok", type: .text, label: "L")]),
            facts: [:]
        ).slackModal(approvalID: "a", decision: .approve, submitLabel: "Approve")
        let modalText = String(decoding: try! WireCoding.encode(modal), as: UTF8.self)
        #expect(modalText.contains("&lt;!here&gt;") && !modalText.contains("name=decision") && modalText.contains(#""block_id":"ok""#))
    }

    @Test func aButtonAlwaysSaysAndLooksLikeTheDecisionItMakes() {
        let form = ApprovalForm(title: "T", buttons: [.init(decision: .approve, label: "Reject", style: .danger), .init(decision: .reject, label: "reject")])
        let rendering = FormRendering(form: form, facts: [:])
        let html = rendering.html(action: "/x", csrfToken: "t")
        #expect(html.contains(#"value="approve" class="primary">Approve: Reject</button>"#))
        #expect(html.contains(#"value="reject" class="danger" formnovalidate>Reject</button>"#))
        let actions = rendering.slackBlocks(approvalID: "a").last?.objectValue?["elements"]
        guard case .array(let elements)? = actions else { Issue.record("no buttons"); return }
        #expect(elements.first?.objectValue?["style"] == "primary" && elements.first?.objectValue?["text"]?.objectValue?["text"] == "Approve: Reject")
        #expect(rendering.markdown(links: ["approve": "https://h/a"]).contains("[Approve: Reject](https://h/a)"))
    }

    @Test func namesOutsideTheAllowedSetAreRefusedAndNeverRendered() {
        #expect(FormLimits.isValidName("amount") && FormLimits.isValidName("change.amount_1-x"))
        for bad in ["", Self.smuggled, "q\"", "a b", "é", "e\u{301}", String(repeating: "a", count: 65), "x\u{200B}"] {
            #expect(!FormLimits.isValidName(bad), "accepted \(bad.debugDescription)")
        }
        let field = ApprovalForm(title: "T", fields: [.init(name: Self.smuggled, type: .text, label: "L")])
        let problem = FormLimits.problem(in: field, outcomes: [.approve, .reject])
        #expect(problem?.hasPrefix("fields[0].name \"q\\u{22}\\u{301} name=decision") == true, "\(problem ?? "accepted")")
        #expect(FormLimits.problem(in: ApprovalForm(title: "T", facts: [Self.smuggled]), outcomes: [.approve])?.hasPrefix("facts[0]") == true)
        #expect(FormLimits.problem(inInput: [Self.smuggled: 1])?.hasPrefix("input key") == true)
        // Rendered anyway (a record written before the check): the field and the change input are left out.
        let changes = ApprovalForm(
            title: "T", fields: [.init(name: Self.smuggled, type: .text, label: "L")],
            buttons: [.init(decision: .approveWithChanges, label: "C"), .init(decision: .reject, label: "R")])
        let html = FormRendering(form: changes, facts: [Self.smuggled: "x", "amount": 5]).html(action: "/x", csrfToken: "t")
        #expect(html.contains("change.amount") && !html.contains("name=\"q"))
        #expect(html.components(separatedBy: "<input").count - 1 == 2)  // csrf_token and change.amount
    }

    @Test func everyPartOfAFormIsBounded() {
        let outcomes = Decision.allCases
        let cases: [(ApprovalForm, String)] = [
            (ApprovalForm(title: String(repeating: "t", count: 201)), "title"),
            (ApprovalForm(title: "T", description: String(repeating: "d", count: 2001)), "description"),
            (ApprovalForm(title: "T", facts: Array(repeating: "amount", count: 50_000)), "facts"),
            (ApprovalForm(title: "T", facts: ["amount", "amount"]), "facts[1]"),
            (ApprovalForm(title: "T", fields: (0..<51).map { .init(name: "f\($0)", type: .text, label: "L") }), "fields"),
            (ApprovalForm(title: "T", fields: [.init(name: "f", type: .text, label: String(repeating: "l", count: 201))]), "fields[0]"),
            (ApprovalForm(title: "T", fields: [.init(name: "f", type: .select, label: "L", options: (0..<101).map(String.init))]), "fields[0]"),
            (ApprovalForm(title: "T", fields: [.init(name: "f", type: .select, label: "L", options: [String(repeating: "o", count: 201)])]), "fields[0]"),
            (ApprovalForm(title: "T", buttons: [.init(decision: .approve, label: String(repeating: "b", count: 76))]), "buttons[0]"),
            (ApprovalForm(title: "T", buttons: [.init(decision: .approve, label: "A"), .init(decision: .approve, label: "B")]), "buttons[1]"),
            (ApprovalForm(title: "T", fields: [.init(name: "decision", type: .text, label: "L")]), "fields[0]"),
        ]
        for (form, part) in cases {
            let problem = FormLimits.problem(in: form, outcomes: outcomes)
            #expect(problem?.hasPrefix(part) == true, "\(part): \(problem ?? "accepted")")
        }
        var wide: JSONObject = [:]
        for index in 0..<101 { wide["k\(index)"] = 1 }
        #expect(FormLimits.problem(inInput: wide)?.contains("top-level keys") == true)
        #expect(FormLimits.problem(inInput: ["big": .string(String(repeating: "x", count: 70_000))])?.contains("bytes") == true)
        #expect(FormLimits.problem(inInput: ["amount": 6000, "to": "ACME"]) == nil)
    }
}
