import Contracts
import DevStack
import Foundation
import ServiceKitTesting
import Testing

/// `hitl submit` against a running stack: CSV rows with a template, and JSON lines.
@Suite(.serialized, .timeLimit(.minutes(10))) struct BulkSubmitTests {
    @Test func csvSubmissionReportsEachRowAndIsSafeToRunTwice() async throws {
        try await Stack.with { stack in
            #expect(try await API.call("PUT", "\(stack.orchestrator)/v1/templates/transfer", json: WorkflowAPITests.template(limit: 5000)).status == 201)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bulk-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let csv = directory.appendingPathComponent("rows.csv")
            try """
            amount,currency,payee,account
            4000,EUR,"ACME, Inc.",007
            6000,EUR,"Say ""hi"" Ltd",0042
            12.5,USD,Solo
            1000,GBP,Bob,1

            """.write(to: csv, atomically: true, encoding: .utf8)
            let first = try Self.run(stack, ["submit", "--csv", csv.path, "--template", "transfer"])
            let lines = first.output.split(separator: "\n").filter { $0.hasPrefix("row ") }
            #expect(first.status == 1)
            #expect(lines.count == 4)
            #expect(lines[0].hasPrefix("row 2: created ") && lines[0].hasSuffix(" completed"))
            #expect(lines[1].hasPrefix("row 3: created ") && lines[1].hasSuffix(" waiting_approval"))
            #expect(lines[2] == "row 4: error: has 3 cells; the header names 4 columns")
            #expect(first.output.contains("4 rows: 3 created, 0 existing, 1 failed"))
            let ids = lines.compactMap { line -> String? in
                let words = line.split(separator: " ")
                return words.count == 5 ? String(words[3]) : nil
            }
            #expect(ids.count == 3)
            let shown = try await stack.workflow(ids[1])
            #expect(shown["input"] == .object(["amount": 6000, "currency": "EUR", "payee": "Say \"hi\" Ltd", "account": "0042"]))
            #expect(shown["type"] == "transfer" && shown["template_version"] == 1)

            let second = try Self.run(stack, ["submit", "--csv", csv.path, "--template", "transfer"])
            let again = second.output.split(separator: "\n").filter { $0.hasPrefix("row ") }
            #expect(again.filter { $0.contains(" existing ") }.count == 3)
            #expect(
                again.compactMap { line -> String? in
                    let words = line.split(separator: " ")
                    return words.count == 5 ? String(words[3]) : nil
                } == ids)
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows") == 3)

            let jsonl = directory.appendingPathComponent("requests.jsonl")
            try """
            {"idempotency_key":"j-1","type":"t","requester":"a","input":{"amount":1},"template":"transfer"}
            not json
            {"idempotency_key":"j-2","type":"t","requester":"a","input":{"amount":1},"steps":[{"name":"x","kind":"dance"}]}
            """.write(to: jsonl, atomically: true, encoding: .utf8)
            let mixed = try Self.run(stack, ["submit", "--file", jsonl.path])
            let rows = mixed.output.split(separator: "\n").filter { $0.hasPrefix("row ") }
            #expect(rows.count == 3)
            #expect(rows[0].hasPrefix("row 1: created "))
            #expect(rows[1].hasPrefix("row 2: error: not a JSON object"))
            // A step kind the API does not know is refused by the typed client, before it is sent.
            #expect(rows[2].hasPrefix("row 3: error: the request does not fit the API") && rows[2].contains("kind"), "\(rows[2])")
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows") == 4)
        }
    }

    static func run(_ stack: Stack, _ arguments: [String]) throws -> (status: Int32, output: String) {
        do {
            return (0, try stack.hitl(arguments))
        } catch let failure as Shell.Failure {
            return (failure.status, failure.output)
        }
    }
}
