import AgentMCP
import ArgumentParser
import Contracts
import Foundation
import HITLClient
import ServiceKit

/// `hitl dlq list | show | replay`, over the orchestrator's dead-letter API.
struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "Inspect and replay dead letters.",
        subcommands: [List.self, Show.self, Replay.self])

    struct Filter: ParsableArguments {
        @Option(help: "Only dead letters from this original topic.") var topic: String?
        @Option(help: "Only this original event type.") var eventType: String?
        @Option(help: "Only dead letters from this service.") var service: String?
        @Option(help: "Only errors containing this text.") var error: String?
        @Option(help: "Only dead letters at or after this RFC 3339 time.") var since: String?
        @Option(help: "Only dead letters before this RFC 3339 time.") var until: String?

        /// The filter as the list operation's query.
        func query(limit: Int) throws -> Operations.ListDeadLetters.Input.Query {
            func time(_ text: String?, _ option: String) throws -> Date? {
                guard let text else { return nil }
                guard let date = WireCoding.parseTime(text) else { throw ValidationError("--\(option) \(text) is not an RFC 3339 time") }
                return date
            }
            return .init(
                topic: topic, eventType: eventType, service: service, error: error,
                since: try time(since, "since"), until: try time(until, "until"), limit: limit)
        }

        var pairs: [String: String] {
            var pairs: [String: String] = [:]
            pairs["topic"] = topic
            pairs["event_type"] = eventType
            pairs["service"] = service
            pairs["error"] = error
            pairs["since"] = since
            pairs["until"] = until
            return pairs
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters, oldest first, as JSON lines.")
        @OptionGroup var target: OrchestratorTarget
        @OptionGroup var filter: Filter
        @Option(help: "At most this many.") var limit = 100

        func run() async throws {
            let query = try filter.query(limit: limit)
            let answer = try await target.api { try JSONBridge.object(try await $0.listDeadLetters(query: query).ok.body.json) }
            guard case .array(let items)? = answer["items"] else { return }
            for item in items {
                print(try JSONColumn.text(item))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one dead letter with its replays.")
        @OptionGroup var target: OrchestratorTarget
        @Argument(help: "The dead letter's id.") var id: String

        func run() async throws {
            let answer = try await target.api { try JSONBridge.object(try await $0.getDeadLetter(path: .init(id: id)).ok.body.json) }
            print(try JSONColumn.text(answer))
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Republish dead letters to their original topics (one or more ids, a filter, or --all).")
        @OptionGroup var target: OrchestratorTarget
        @OptionGroup var filter: Filter
        @Argument(help: "Dead letter ids.") var ids: [String] = []
        @Flag(help: "Replay every dead letter (with --yes; without it, only says how many).") var all = false
        @Flag(help: "Confirms --all.") var yes = false
        @Flag(help: "Replay dead letters that were replayed before, too.") var force = false
        @Flag(help: "Only say what would be replayed.") var dryRun = false
        @Option(help: "Who replays (recorded with each replay).") var by = ProcessInfo.processInfo.environment["USER"] ?? "ops"

        func run() async throws {
            // --all without --yes only counts: replaying everything is not done by a slip.
            let counting = all && ids.isEmpty && filter.pairs.isEmpty && !yes
            var body: JSONObject = ["dry_run": .bool(dryRun || counting), "replayed_by": .string(by), "force": .bool(force)]
            if !ids.isEmpty {
                body["ids"] = .array(ids.map(JSONValue.string))
            } else if !filter.pairs.isEmpty {
                body["filter"] = .object(filter.pairs.mapValues(JSONValue.string))
            } else if all {
                body["all"] = .bool(true)
            } else {
                throw ValidationError("say what to replay: ids, a filter, or --all")
            }
            let answer = try await target.api { try JSONBridge.object(try await $0.replayDeadLetters(body: .json(JSONBridge.typed(body))).ok.body.json) }
            if counting {
                guard case .array(let chosen)? = answer["replayed"], case .array(let skipped)? = answer["skipped_as_replayed"] else {
                    throw ValidationError("unexpected answer: \(try JSONColumn.text(answer))")
                }
                throw ValidationError(
                    "--all would replay \(chosen.count) dead letters (\(skipped.count) more were replayed before; --force includes them); add --yes to replay them"
                )
            }
            print(try JSONColumn.text(answer))
        }
    }
}

/// Where the orchestrator is: `--orchestrator`, `HITL_ORCHESTRATOR_URL`, or `.hitl/dev.json`.
struct OrchestratorTarget: ParsableArguments {
    @Option(help: "The orchestrator's base URL (default: HITL_ORCHESTRATOR_URL, then .hitl/dev.json).")
    var orchestrator: String?
    @Option(help: "A bearer token (default: HITL_TOKEN, then an admin token from .hitl/dev.json).")
    var token: String?

    var bearer: String? {
        if let token { return token }
        if let token = ProcessInfo.processInfo.environment["HITL_TOKEN"], !token.isEmpty { return token }
        if let data = FileManager.default.contents(atPath: ".hitl/dev.json"),
            let facts = try? WireCoding.decode(DevFacts.self, from: Array(data)), let secret = facts.jwtSecret
        {
            return AccessTokens(secret: secret).issue(subject: "ops@hitl.dev", role: .admin, lifetime: 600)
        }
        return nil
    }

    var baseURL: String {
        get throws {
            if let orchestrator { return orchestrator }
            if let url = ProcessInfo.processInfo.environment["HITL_ORCHESTRATOR_URL"] { return url }
            if let data = FileManager.default.contents(atPath: ".hitl/dev.json"),
                let facts = try? WireCoding.decode(DevFacts.self, from: Array(data))
            {
                return facts.orchestratorUrl
            }
            throw ValidationError("no orchestrator: pass --orchestrator, set HITL_ORCHESTRATOR_URL, or run `hitl dev`")
        }
    }

    /// Runs `body` with the typed client of the orchestrator; a refusal of the API, or a
    /// request that does not fit it, becomes an error carrying the reason.
    func api<T>(_ body: (HITLClient.Client) async throws -> T) async throws -> T {
        let client = try APIClient(baseURL: try baseURL, token: bearer)
        do {
            return try await body(client.orchestrator)
        } catch {
            throw ValidationError(HITLClient.describe(error))
        }
    }
}
