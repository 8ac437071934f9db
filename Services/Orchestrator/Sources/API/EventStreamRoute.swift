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
struct EventStreamRoute: Sendable {
    let workflows: WorkflowRoutes
    var pollInterval: Duration = .milliseconds(200)

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/workflows/{id}/events") { request, context in
            let id = try workflows.parseID(context.parameters.require("id"))
            try await workflows.authorize(id)
            let start = request.headers[.lastEventID].flatMap { Int64($0) } ?? 0
            // Answer 404 before the stream starts when there is no such workflow.
            let first = try await workflows.history(of: id, after: start)
            let body = ResponseBody { [workflows, pollInterval] writer in
                var last = start
                var pending = first
                var quietSince = ContinuousClock.now
                while !Task.isCancelled {
                    for entry in pending {
                        try await writer.write(ByteBuffer(bytes: try Self.frame(entry)))
                        last = entry.sequence
                        quietSince = .now
                    }
                    if pending.contains(where: { $0.toStatus.flatMap(WorkflowStatus.init(rawValue:))?.isFinal == true }) { break }
                    if ContinuousClock.now - quietSince > .seconds(15) {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                        quietSince = .now
                    }
                    try await Task.sleep(for: pollInterval)
                    pending = try await workflows.entries(of: id, after: last)
                }
                try await writer.finish(nil)
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
