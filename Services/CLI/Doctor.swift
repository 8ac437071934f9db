import ArgumentParser
import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore

/// `hitl doctor`: asks each service what it holds and reports what does not add up across
/// them. Exit code 1 when anything is found.
///
/// - a workflow waiting on an approval the approval service does not have, or has closed;
/// - a pending approval without its deadline timer in the timeout service;
/// - an outbox row of any service older than a minute (`hitl_outbox_oldest_age_seconds`);
/// - a dead letter nobody has replayed yet.
///
/// What is younger than `--grace` is left out: it may still be on its way between services.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that the services agree: waits, approvals, deadline timers, outboxes, dead letters. Exit code 1 when anything is off.")

    @OptionGroup var target: OrchestratorTarget
    @Option(help: "The approval service's base URL (default: .hitl/dev.json).") var approval: String?
    @Option(help: "The notifier's base URL (default: .hitl/dev.json).") var notifier: String?
    @Option(help: "The timeout service's base URL (default: .hitl/dev.json).") var timeout: String?
    @Option(help: "Seconds within which a mismatch may still be in flight.") var grace = 60

    func run() async throws {
        let facts = FileManager.default.contents(atPath: ".hitl/dev.json").flatMap { try? WireCoding.decode(DevFacts.self, from: Array($0)) }
        let orchestrator = try target.baseURL
        guard let approval = approval ?? facts?.approvalUrl, let notifier = notifier ?? facts?.notifierUrl, let timeout = timeout ?? facts?.timeoutUrl else {
            throw ValidationError("pass --approval, --notifier and --timeout, or run it beside `hitl dev`")
        }
        let cutoff = Date().addingTimeInterval(-Double(grace))
        var findings: [String] = []

        // Waits the approval service should know as pending.
        for wait in try await items(orchestrator + "/v1/ops/waiting") {
            guard case .string(let approvalID)? = wait["approval_id"], date(wait["since"]) < cutoff else { continue }
            let (status, shown) = try await get(approval + "/v1/approvals/\(approvalID)")
            let workflow = wait["workflow_id"]?.stringValue ?? "?"
            if status == 404 {
                findings.append("workflow \(workflow) waits on approval \(approvalID), which the approval service does not have")
            } else if case .string(let state)? = shown["status"], state != "pending" {
                findings.append("workflow \(workflow) waits on approval \(approvalID), which is \(state)")
            }
        }

        // Pending approvals and their deadline timers.
        let timers = Set(try await items(timeout + "/v1/ops/timers?owner=approval").compactMap { $0["key"]?.stringValue })
        for pending in try await items(approval + "/v1/approvals?status=pending&limit=1000") {
            guard case .string(let id)? = pending["id"], date(pending["created_at"]) < cutoff else { continue }
            if !timers.contains("deadline:\(id)") { findings.append("pending approval \(id) has no deadline timer") }
        }

        // Outboxes, from each service's metrics.
        for (service, base) in [("orchestrator", orchestrator), ("approval", approval), ("notifier", notifier), ("timeout", timeout)] {
            let (_, text) = try await fetch(base + "/metrics", token: nil)
            for line in text.split(separator: "\n") where line.hasPrefix("hitl_outbox_oldest_age_seconds") {
                if let age = line.split(separator: " ").last.flatMap({ Double($0) }), age > Double(grace) {
                    findings.append("\(service): an outbox row has waited \(Int(age)) s to be published")
                }
            }
        }

        // Dead letters not replayed.
        for letter in try await items(orchestrator + "/v1/dead-letters?limit=1000") {
            guard case .array(let replays)? = letter["replays"], replays.isEmpty else { continue }
            let record = letter["dead_letter"]?.objectValue
            findings.append(
                "dead letter \(record?["dead_letter_id"]?.stringValue ?? "?") from \(record?["service"]?.stringValue ?? "?") is not replayed: \(record?["error"]?.stringValue ?? "")"
            )
        }

        if findings.isEmpty {
            print("doctor: nothing found")
            return
        }
        for finding in findings { print(finding) }
        throw ExitCode(1)
    }

    private func date(_ value: JSONValue?) -> Date {
        value?.stringValue.flatMap(WireCoding.parseTime) ?? .distantPast
    }

    private func items(_ url: String) async throws -> [JSONObject] {
        let (status, object) = try await get(url)
        guard status == 200 else { throw ValidationError("\(url) answered \(status): \(object["reason"]?.stringValue ?? "")") }
        guard case .array(let items)? = object["items"] else { return [] }
        return items.compactMap(\.objectValue)
    }

    private func get(_ url: String) async throws -> (Int, JSONObject) {
        let (status, text) = try await fetch(url, token: target.bearer)
        return (status, (try? WireCoding.decode(JSONObject.self, from: Array(text.utf8))) ?? [:])
    }

    private func fetch(_ url: String, token: String?) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 64 << 20)))
    }
}
