import Foundation
import MCP

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `hitl mcp gate` must not forget across a restart: each gated call's workflow, whether
/// its upstream call was begun and what it answered, and the grant windows. One JSON file,
/// replaced atomically and flushed to disk before the step it records is taken, so that an
/// upstream call is begun at most once: a call found "executing" after a crash is reported as
/// of unknown outcome, never made again. The approvals themselves live in HITL; the file
/// only has to say what the gateway did with them.
///
/// One gateway process owns a ledger at a time (an exclusive lock on `<path>.lock`).
actor GateLedger {
    enum State: String, Codable, Sendable {
        /// Written before the workflow is submitted, with the exact submission (its
        /// idempotency key new for each approval asked), so that a retry after a crash submits
        /// the same one and the orchestrator answers the same workflow.
        case requested
        /// Submitted; waiting for the decision.
        case waiting
        /// The upstream call was begun: never begin it again.
        case executing
        /// The upstream answered (`result`).
        case done
        /// Rejected, expired or cancelled (`result` is the tool error the agent gets).
        case refused
    }

    struct Call: Codable, Sendable {
        var id: String
        var tool: String
        var caller: String
        var arguments: [String: Value]
        /// The workflow submission, kept so a retry submits exactly the same.
        var submission: Data
        var workflowId: String?
        var state: State
        var result: CallTool.Result?
        var finishedAt: Date?
    }

    struct Grant: Codable, Sendable {
        var tool: String
        var caller: String
        /// The fingerprint of the policy rule that granted it (`GatePolicy.MatchedRule`).
        var rule: String
        /// The call the approval was for, when the grant is for the same arguments.
        var callId: String?
        var when: String?
        var until: Date
        var workflowId: String
    }

    private struct Contents: Codable {
        var calls: [String: Call] = [:]
        var grants: [Grant] = []
    }

    let path: String
    /// The directory the ledger is in, whose entry for it a rename changes.
    private let directory: String
    private var contents: Contents
    private var busy: [String: [CheckedContinuation<Void, Never>]] = [:]
    /// The lock file's descriptor, held while the process lives.
    private let lock: Int32

    init(path: String) throws {
        self.path = path
        let parent = (path as NSString).deletingLastPathComponent
        directory = parent.isEmpty ? "." : parent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        lock = open(path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lock >= 0 else { throw ToolFailure("cannot open \(path).lock: \(String(cString: strerror(errno)))") }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            close(lock)
            throw ToolFailure("another hitl mcp gate uses \(path); give each gateway its own --state")
        }
        if let data = FileManager.default.contents(atPath: path) {
            do {
                contents = try JSONDecoder().decode(Contents.self, from: data)
            } catch {
                close(lock)
                throw ToolFailure("the gateway's state \(path) cannot be read (\(error)); it is kept as it is, move it away to start afresh")
            }
        } else {
            contents = Contents()
        }
    }

    /// Waits until no other task handles call `id`; `release` lets the next one in.
    func acquire(_ id: String) async {
        if busy[id] == nil {
            busy[id] = []
            return
        }
        await withCheckedContinuation { busy[id]!.append($0) }
    }

    func release(_ id: String) {
        guard var waiting = busy[id], !waiting.isEmpty else {
            busy[id] = nil
            return
        }
        waiting.removeFirst().resume()
        busy[id] = waiting
    }

    func call(_ id: String) -> Call? { contents.calls[id] }

    /// Records the call's new state on disk before returning.
    func save(_ call: Call) throws {
        contents.calls[call.id] = call
        try flush()
    }

    func addGrant(_ grant: Grant) throws {
        contents.grants.append(grant)
        try flush()
    }

    /// The live grants of `tool` for `caller`.
    func grants(tool: String, caller: String, at now: Date) -> [Grant] {
        contents.grants.filter { $0.tool == tool && $0.caller == caller && $0.until > now }
    }

    /// Drops what no longer matters: finished calls older than `cutoff` (an identical call
    /// asks afresh anyway, under a new idempotency key) and lapsed grants.
    func prune(finishedBefore cutoff: Date, now: Date) throws {
        let before = (contents.calls.count, contents.grants.count)
        contents.grants.removeAll { $0.until <= now }
        contents.calls = contents.calls.filter { _, call in call.finishedAt.map { $0 >= cutoff } ?? true }
        if before != (contents.calls.count, contents.grants.count) { try flush() }
    }

    /// Writes the whole ledger to a new file, flushes it and renames it over the old one.
    private func flush() throws {
        let data = try JSONEncoder().encode(contents)
        // A new file of our own each time (never one planted there, nor a symlink), 0600.
        let temporary = path + ".tmp-\(UUID().uuidString.lowercased())"
        let fd = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw ToolFailure("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        let failure = errno
        close(fd)
        guard written == data.count, synced == 0 else {
            unlink(temporary)
            throw ToolFailure("cannot write the gateway's state \(path): \(String(cString: strerror(failure)))")
        }
        guard rename(temporary, path) == 0 else {
            let failure = errno
            unlink(temporary)
            throw ToolFailure("cannot replace the gateway's state \(path): \(String(cString: strerror(failure)))")
        }
        // The rename itself is durable once the directory is.
        let entry = open(directory, O_RDONLY | O_CLOEXEC)
        if entry >= 0 {
            fsync(entry)
            close(entry)
        }
    }
}
