import Contracts
import Foundation
import Hummingbird
import PostgresNIO
import ServiceKit

/// The ops side of dead letters: the orchestrator indexes everything on `hitl.dead-letter`
/// and answers `GET /v1/dead-letters`, `GET /v1/dead-letters/{id}` and
/// `POST /v1/dead-letters/replay`. A replay republishes the original record (same key,
/// headers and value, so the same event id) to its original topic through the outbox,
/// adds a `hitl_replay_of` header, and records who replayed it and when. An event that was
/// already processed is a no-op at its consumer's inbox.
struct DeadLetterIndex: Sendable {
    let runtime: ServiceRuntime

    /// Indexes one dead letter (a repeat changes nothing).
    func index(_ event: EventEnvelope, in transaction: Transaction) async throws {
        let record = try event.decode(DeadLettered.self)
        guard let id = UUID(uuidString: record.deadLetterId) else { throw PermanentFailure("dead_letter_id is not a UUID") }
        let json = try JSONColumn.text(record)
        try await transaction.query(
            """
            INSERT INTO dead_letters (id, service, original_topic, event_id, event_type, error, attempts, dead_lettered_at, record)
            VALUES (\(id), \(record.service), \(record.originalTopic), \(record.eventId), \(record.originalEventType),
                    \(record.error), \(record.attempts), \(record.deadLetteredAt), \(json)::jsonb)
            ON CONFLICT (id) DO NOTHING
            """)
    }

    func register(on router: Router<ServiceRequestContext>) {
        router.get("/v1/dead-letters") { request, context in
            _ = try context.require(.admin)
            let filter = try DeadLetterFilter(query: request.uri.queryParameters)
            return try JSONResponse.make(ItemList(items: try await list(filter)))
        }
        router.get("/v1/dead-letters/{id}") { _, context in
            _ = try context.require(.admin)
            let text = try context.parameters.require("id")
            guard let id = UUID(uuidString: text), let found = try await list(DeadLetterFilter(ids: [id])).first else {
                throw APIError.notFound("no dead letter \(text)")
            }
            return try JSONResponse.make(found)
        }
        router.post("/v1/dead-letters/replay") { request, context in
            _ = try context.require(.admin)
            var request = request
            let body = try await request.decodeJSON(ReplayRequest.self)
            return try JSONResponse.make(try await replay(body, logger: context.logger))
        }
    }

    func list(_ filter: DeadLetterFilter) async throws -> [DeadLetterView] {
        let rows = try await runtime.database.query(
            """
            SELECT d.record::text,
                   coalesce((SELECT json_agg(json_build_object('replayed_by', r.replayed_by, 'replayed_at', r.replayed_at) ORDER BY r.id)
                             FROM dead_letter_replays r WHERE r.dead_letter_id = d.id)::text, '[]')
            FROM dead_letters d
            WHERE (\(filter.ids.isEmpty) OR d.id = ANY(\(filter.ids)))
              AND (\(filter.topic)::text IS NULL OR d.original_topic = \(filter.topic))
              AND (\(filter.eventType)::text IS NULL OR d.event_type = \(filter.eventType))
              AND (\(filter.service)::text IS NULL OR d.service = \(filter.service))
              AND (\(filter.error)::text IS NULL OR strpos(lower(d.error), lower(\(filter.error))) > 0)
              AND (\(filter.since)::timestamptz IS NULL OR d.dead_lettered_at >= \(filter.since))
              AND (\(filter.until)::timestamptz IS NULL OR d.dead_lettered_at < \(filter.until))
            ORDER BY d.dead_lettered_at, d.id LIMIT \(filter.limit)
            """)
        var views: [DeadLetterView] = []
        for try await (record, replays) in rows.decode((String, String).self) {
            let dead = try WireCoding.decode(DeadLettered.self, from: Array(record.utf8))
            let history = (try? JSONDecoder().decode([ReplayView].self, from: Data(replays.utf8))) ?? []
            views.append(DeadLetterView(deadLetter: dead, replays: history))
        }
        return views
    }

    private func replay(_ body: ReplayRequest, logger: Logger) async throws -> ReplayAnswer {
        guard let replayedBy = body.replayedBy, !replayedBy.isEmpty else {
            throw APIError.badRequest("replayed_by must name who replays")
        }
        var filter: DeadLetterFilter
        if let ids = body.ids, !ids.isEmpty {
            let parsed = ids.compactMap(UUID.init(uuidString:))
            guard parsed.count == ids.count else { throw APIError.badRequest("ids must be dead-letter ids (UUIDs)") }
            filter = DeadLetterFilter(ids: parsed)
        } else if let given = body.filter {
            filter = try DeadLetterFilter(query: given)
        } else if body.all == true {
            filter = DeadLetterFilter()
        } else {
            throw APIError.badRequest("say what to replay: ids, filter, or all: true")
        }
        filter.limit = 10_000
        let chosen = try await list(filter)
        if let ids = body.ids, chosen.count < ids.count {
            let found = Set(chosen.map(\.deadLetter.deadLetterId))
            let missing = ids.filter { !found.contains($0.lowercased()) }
            throw APIError.notFound("no dead letter \(missing.joined(separator: ", "))")
        }
        // A replay goes only where the contracts say events go: a forged dead letter naming
        // some other topic must not become a way to publish there.
        let topics = Set(Topic.all.map(\.rawValue)).subtracting([Topic.deadLetter.rawValue])
        if let stray = chosen.first(where: { !topics.contains($0.deadLetter.originalTopic) }) {
            throw APIError(
                .unprocessableContent, "not_a_contract_topic",
                "dead letter \(stray.deadLetter.deadLetterId) came from \(stray.deadLetter.originalTopic), which is not a topic of the contracts")
        }
        // Replayed before: not again unless forced (the record of replays is kept for good,
        // so this holds after the inbox that would make a repeat harmless was pruned).
        let (again, fresh) = (chosen.filter { !$0.replays.isEmpty }, chosen.filter { $0.replays.isEmpty })
        let toReplay = body.force == true ? chosen : fresh
        let skipped = body.force == true ? [] : again.map(ReplayItem.init)
        let items = toReplay.map(ReplayItem.init)
        guard body.dryRun != true else { return ReplayAnswer(dryRun: true, replayed: items, skippedAsReplayed: skipped) }
        try await runtime.database.transaction(logger: logger) { transaction in
            for view in toReplay {
                let dead = view.deadLetter
                guard let value = Data(base64Encoded: dead.valueBase64) else {
                    throw APIError.badRequest("dead letter \(dead.deadLetterId) holds no readable value")
                }
                guard let deadLetterID = UUID(uuidString: dead.deadLetterId) else {
                    throw APIError.badRequest("dead letter \(dead.deadLetterId.prefix(100)) has no valid id")
                }
                let headers =
                    dead.headers.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
                    .filter { $0.0 != EventEnvelope.Header.replayOf } + [(EventEnvelope.Header.replayOf, dead.deadLetterId)]
                try transaction.publishRaw(topic: dead.originalTopic, key: dead.key ?? "", headers: headers, value: Array(value))
                try await transaction.query(
                    "INSERT INTO dead_letter_replays (dead_letter_id, replayed_by) VALUES (\(deadLetterID), \(replayedBy))")
            }
        }
        return ReplayAnswer(dryRun: false, replayed: items, skippedAsReplayed: skipped)
    }
}

/// Which dead letters to list or replay.
struct DeadLetterFilter: Sendable {
    var ids: [UUID] = []
    var topic: String?
    var eventType: String?
    var service: String?
    var error: String?
    var since: Date?
    var until: Date?
    var limit = 100

    init(ids: [UUID] = []) { self.ids = ids }

    /// Reads `topic`, `event_type`, `service`, `error`, `since`, `until`, `limit`.
    init(query: some Sequence<(key: Substring, value: Substring)>) throws {
        for (key, value) in query { try set(String(key), String(value)) }
    }

    init(query: [String: String]) throws {
        for (key, value) in query { try set(key, value) }
    }

    private mutating func set(_ key: String, _ value: String) throws {
        switch key {
        case "topic": topic = value
        case "event_type": eventType = value
        case "service": service = value
        case "error": error = value
        case "since", "until":
            guard let time = WireCoding.parseTime(value) else { throw APIError.badRequest("\(key) must be an RFC 3339 time") }
            if key == "since" { since = time } else { until = time }
        case "limit":
            guard let number = Int(value), (1...1000).contains(number) else { throw APIError.badRequest("limit must be 1 to 1000") }
            limit = number
        default:
            throw APIError.badRequest("unknown filter \(key) (known: topic, event_type, service, error, since, until, limit)")
        }
    }
}

struct DeadLetterView: Encodable {
    let deadLetter: DeadLettered
    let replays: [ReplayView]
}

struct ReplayView: Codable {
    let replayedBy: String
    let replayedAt: String

    enum CodingKeys: String, CodingKey {
        case replayedBy = "replayed_by"
        case replayedAt = "replayed_at"
    }
}

struct ReplayRequest: Decodable {
    let ids: [String]?
    let filter: [String: String]?
    let all: Bool?
    let dryRun: Bool?
    let replayedBy: String?
    /// Replays dead letters replayed before, too.
    let force: Bool?
}

struct ReplayItem: Encodable {
    let id: String
    let topic: String
    let eventId: String?

    init(_ view: DeadLetterView) {
        id = view.deadLetter.deadLetterId
        topic = view.deadLetter.originalTopic
        eventId = view.deadLetter.eventId
    }
}

struct ReplayAnswer: Encodable {
    let dryRun: Bool
    let replayed: [ReplayItem]
    /// Chosen, but replayed before (and not forced).
    let skippedAsReplayed: [ReplayItem]
}
