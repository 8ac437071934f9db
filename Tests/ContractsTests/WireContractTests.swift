import Contracts
import Foundation
import Testing

@Suite struct WireContractTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        var bytes = Array(try Data(contentsOf: url))
        while bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        return bytes
    }

    @Test(arguments: ContractSamples.all.map(\.fixture))
    func payloadMatchesItsGoldenFixture(name: String) throws {
        let sample = try #require(ContractSamples.all.first { $0.fixture == name })
        let golden = try Self.fixture(name)
        let encoded = try sample.encode()
        #expect(String(decoding: encoded, as: UTF8.self) == String(decoding: golden, as: UTF8.self))
        #expect(try sample.roundTrips(golden))
        #expect(sample.type.majorVersion == 1)
    }

    @Test func approvalIdsAreDerivedFromWorkflowStepAndRound() {
        // Pinned: agents and other implementations compute the same id (SHA-256, version 8 UUID).
        let id = ApprovalIdentity.derive(workflowId: ContractSamples.workflowID, step: "approve", round: 1)
        #expect(id == "c788d4d8-2bcf-8b14-9d2a-2fc0d5a1fffa")
        #expect(ApprovalIdentity.derive(workflowId: ContractSamples.workflowID.uppercased(), step: "approve", round: 1) == id)
        #expect(ApprovalIdentity.derive(workflowId: ContractSamples.workflowID, step: "approve", round: 2) != id)
        #expect(UUID(uuidString: id) != nil)
    }

    @Test func everyTopicIsNamedOnce() {
        #expect(Set(Topic.all).count == Topic.all.count)
        #expect(Topic.all.contains(.deadLetter))
        #expect(Topic.timerFirings(for: .approval).rawValue == "hitl.timer.fired.approval")
    }

    @Test func envelopeTravelsAsCloudEventsHeaders() throws {
        let payload = ApprovalExpired(approvalId: "a", workflowId: "w", step: "s", deadline: ContractSamples.time, expiredAt: ContractSamples.time)
        let cause = EventEnvelope(type: .approvalRequested, source: "orchestrator", subject: "w", data: [])
        let envelope = try EventEnvelope(payload, source: "approval", subject: "w", causedBy: cause)
        let names = envelope.headers.map(\.0)
        #expect(names == ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_subject", "content-type", "traceparent"])
        let read = try EventEnvelope(headers: envelope.headers, value: envelope.data)
        #expect(read.id == envelope.id && read.type == .approvalExpired && read.subject == "w")
        #expect(try read.decode(ApprovalExpired.self) == payload)
        // The effect carries the cause's trace id.
        #expect(envelope.traceparent.split(separator: "-")[1] == cause.traceparent.split(separator: "-")[1])
    }

    @Test func envelopeWithoutRequiredAttributesIsRefusedWithTheirName() throws {
        let envelope = EventEnvelope(type: .approvalDecided, source: "approval", subject: "w", data: Array("{}".utf8))
        let withoutID = envelope.headers.filter { $0.0 != "ce_id" }
        #expect(throws: ContractError.self) { try EventEnvelope(headers: withoutID, value: envelope.data) }
        do {
            _ = try EventEnvelope(headers: withoutID, value: envelope.data)
        } catch let error as ContractError {
            #expect(error.code == .missingAttribute)
            #expect(error.reason.contains("ce_id"))
        }
        let wrongSpec = envelope.headers.map { $0.0 == "ce_specversion" ? ($0.0, "0.3") : $0 }
        #expect(throws: ContractError.self) { try EventEnvelope(headers: wrongSpec, value: envelope.data) }
    }

    @Test func payloadOfAnotherTypeOrVersionIsRefused() throws {
        let envelope = EventEnvelope(type: EventType(rawValue: "hitl.approval.decided.v2"), source: "approval", subject: "w", data: Array("{}".utf8))
        #expect(envelope.type.majorVersion == 2)
        #expect(envelope.type.name == "hitl.approval.decided")
        #expect(throws: ContractError.self) { try envelope.decode(ApprovalDecided.self) }
    }

    @Test func missingFieldIsNamedInSnakeCase() throws {
        let body = Array(#"{"type":"t","requester":"r","input":{},"steps":[]}"#.utf8)
        do {
            _ = try WireCoding.decode(WorkflowSubmitted.self, from: body)
            Issue.record("decoded a submission without idempotency_key")
        } catch {
            #expect(ContractError.describe(error) == "missing field idempotency_key")
        }
    }
}

@Suite struct DeploymentContractTests {
    /// docker-compose.yml creates the topics by name; it must create exactly `Topic.all`.
    @Test func composeCreatesExactlyTheContractTopics() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let compose = try String(contentsOf: root.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        let line = try #require(compose.split(separator: "\n").first { $0.contains("for topic in") })
        let names = line.split(separator: " ").filter { $0.hasPrefix("hitl.") }.map { String($0.trimmingCharacters(in: CharacterSet(charactersIn: ";"))) }
        #expect(Set(names) == Set(Topic.all.map(\.rawValue)))
        #expect(names.count == Topic.all.count)
    }

    /// The kafka-topics job grants exactly `TopicAccess`: each principal reads and writes
    /// what the services check of themselves before they subscribe or publish.
    @Test func composeGrantsExactlyTheContractACLs() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let compose = try String(contentsOf: root.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        var granted: Set<String> = []
        for line in compose.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.first == "allow", words.count > 3 else { continue }
            for topic in words.dropFirst(3) { granted.insert("\(words[1]) \(words[2]) \(topic)") }
        }
        var expected: Set<String> = []
        for topic in Topic.all {
            for principal in TopicAccess.writers(of: topic) { expected.insert("\(principal.rawValue) Write \(topic)") }
            for principal in TopicAccess.readers(of: topic) { expected.insert("\(principal.rawValue) Read \(topic)") }
        }
        #expect(granted == expected, "missing: \(expected.subtracting(granted).sorted()), extra: \(granted.subtracting(expected).sorted())")
        // Agents write requests and task results only; decisions come from the approval service.
        #expect(!TopicAccess.writers(of: .approvalDecisions).contains(.agent))
        #expect(TopicAccess.writers(of: .timerFirings(for: .approval)) == [.timeout, .orchestrator])
        #expect(TopicAccess.may("notifier", write: Topic.approvalDecisions.rawValue) == false)
        #expect(TopicAccess.may("approval", read: .workflowRequests) == false)
    }

    /// The AsyncAPI document the services serve describes exactly `Topic.all`.
    @Test func asyncAPIDescribesExactlyTheContractTopics() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let document = try String(contentsOf: root.appendingPathComponent("Shared/ServiceKit/Resources/asyncapi.yaml"), encoding: .utf8)
        let addresses = document.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("address: ") ? String(trimmed.dropFirst("address: ".count)) : nil
        }
        #expect(Set(addresses) == Set(Topic.all.map(\.rawValue)))
        for type in [EventType.approvalRequested, .approvalDecided, .approvalExpired, .timerScheduled, .timerFired, .deadLettered, .notificationRequested] {
            #expect(document.contains("name: \(type.rawValue)"), "\(type) is not described")
        }
    }
}

@Suite struct IdentifierTests {
    @Test func anIdHasOneLowercaseSpellingAndAWrongOneIsRefusedOnDecode() throws {
        let upper = "6F9619FF-8B86-D011-B42D-00C04FC964FF"
        let id = try #require(WorkflowID(upper))
        #expect(id.description == upper.lowercased() && WorkflowID(upper.lowercased()) == id)
        #expect(WorkflowID("wf-1") == nil)
        #expect(try WireCoding.encode(["id": id]) == Array(#"{"id":"6f9619ff-8b86-d011-b42d-00c04fc964ff"}"#.utf8))
        #expect(throws: DecodingError.self) { try WireCoding.decode([String: ApprovalID].self, from: Array(#"{"id":"not-a-uuid"}"#.utf8)) }
    }
}
