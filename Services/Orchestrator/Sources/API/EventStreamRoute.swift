import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceKit

/// `GET /v1/workflows/{id}/events`: the history as server-sent events, live. Each entry is
/// one event (`id:` its sequence, `event:` its name, `data:` the entry as JSON); the stream
/// starts after `Last-Event-ID` when a client reconnects, and ends once the workflow has
/// ended and everything was sent. A comment line every 15 s keeps proxies from closing it.
/// Live entries come from the shared `HistoryFeed` (one poll for all streams), which also
/// bounds how many streams are open (429 past its limits).
struct EventStreamRoute: Sendable {
    let workflows: WorkflowRoutes
    let feed: HistoryFeed

    func register(on router: Router<ServiceRequestContext>) {
        router.get("/v1/workflows/{id}/events") { request, context in
            let id = try workflows.parseID(context.parameters.require("id"))
            try await workflows.authorize(id, context: context)
            let principal = try context.require(Role.allCases).subject
            let start = request.headers[.lastEventID].flatMap { Int64($0) } ?? 0
            // Answer 404 (or 429) before the stream starts.
            try await workflows.requireWorkflow(id)
            let subscription = try await feed.subscribe(id, principal: principal, after: start)
            let first: [HistoryEntry]
            do {
                first = try await workflows.reads.entries(of: id, after: start)
            } catch {
                await feed.unsubscribe(subscription.id)
                throw error
            }
            let body = ResponseBody { [feed] writer in
                var last = start
                func send(_ entries: [HistoryEntry]) async throws -> Bool {
                    for entry in entries where entry.sequence > last {
                        try await writer.write(ByteBuffer(bytes: try Self.frame(entry)))
                        last = entry.sequence
                        if entry.toStatus.flatMap(WorkflowStatus.init(rawValue:))?.isFinal == true { return true }
                    }
                    return false
                }
                do {
                    var ended = try await send(first)
                    var live = subscription.entries.makeAsyncIterator()
                    while !ended, !Task.isCancelled, let batch = await live.next() {
                        if batch.isEmpty {
                            try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                        } else {
                            ended = try await send(batch)
                        }
                    }
                    await feed.unsubscribe(subscription.id)
                    try await writer.finish(nil)
                } catch {
                    await feed.unsubscribe(subscription.id)
                    throw error
                }
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: body)
        }
    }

    static func frame(_ entry: HistoryEntry) throws -> [UInt8] {
        Array("id: \(entry.sequence)\nevent: \(entry.event)\ndata: ".utf8) + (try WireCoding.encode(entry)) + Array("\n\n".utf8)
    }
}

extension HTTPField.Name {
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}
