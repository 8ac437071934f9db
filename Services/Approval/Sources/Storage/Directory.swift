import Contracts
import Foundation
import PostgresNIO
import ServiceKit

/// The SQL of who approves: the approver groups admins manage over the API and the
/// out-of-office delegations. Approvals read both when they are created or escalated.
struct Directory: Sendable {
    let database: Database
    /// The groups of `HITL_APPROVAL_GROUPS`, which the API cannot change.
    let configured: [String: [String]]

    // MARK: - Groups

    /// Every group: configured ones, then those from the API. Read once per transaction: a
    /// consumer's batch of requests shares it.
    func groups(in transaction: Transaction) async throws -> [String: [String]] {
        try await transaction.shared("approval.directory.groups") { [configured] transaction in
            var groups = configured
            for try await (name, members) in try await transaction.execute(AllGroups()) where groups[name] == nil {
                groups[name] = try WireCoding.decode([String].self, from: Array(members.utf8))
            }
            return groups
        }
    }

    /// Creates or replaces group `name`; answers when it was stored and whether it is new.
    func putGroup(_ name: String, members: [String], by admin: String) async throws -> (updatedAt: Date, created: Bool)? {
        let json = try JSONColumn.text(members)
        let rows = try await database.query(
            """
            INSERT INTO approver_groups (name, members, updated_by) VALUES (\(name), \(json)::jsonb, \(admin))
            ON CONFLICT (name) DO UPDATE SET members = excluded.members, updated_by = excluded.updated_by, updated_at = now()
            RETURNING updated_at, (xmax = 0)
            """)
        for try await (updatedAt, created) in rows.decode((Date, Bool).self) { return (updatedAt, created) }
        return nil
    }

    /// The groups from the API (all, or the one named), by name.
    func storedGroups(named name: String?) async throws -> [ApproverGroups.View] {
        let rows = try await database.query(
            "SELECT name, members::text, updated_by, updated_at FROM approver_groups WHERE \(name)::text IS NULL OR name = \(name)")
        var views: [ApproverGroups.View] = []
        for try await (group, members, updatedBy, updatedAt) in rows.decode((String, String, String?, Date).self) {
            views.append(
                ApproverGroups.View(
                    name: group, members: try WireCoding.decode([String].self, from: Array(members.utf8)), source: "api", updatedBy: updatedBy,
                    updatedAt: updatedAt))
        }
        return views
    }

    /// Deletes group `name`; false when there was none.
    func deleteGroup(_ name: String) async throws -> Bool {
        try await database.returnsRow("DELETE FROM approver_groups WHERE name = \(name) RETURNING 1")
    }

    // MARK: - Delegations

    /// approver → delegate for the delegations in force now (the latest one wins). Read once
    /// per transaction, like `groups`.
    func activeDelegations(in transaction: Transaction) async throws -> [String: String] {
        try await transaction.shared("approval.directory.delegations") { transaction in
            var map: [String: String] = [:]
            for try await (approver, delegate) in try await transaction.execute(ActiveDelegations()) {
                map[approver] = delegate
            }
            return map
        }
    }

    /// Stores a delegation; answers its id.
    func addDelegation(approver: String, delegate: String, startsAt: Date, endsAt: Date, reason: String?) async throws -> Int64 {
        let rows = try await database.query(
            """
            INSERT INTO delegations (approver, delegate, starts_at, ends_at, reason)
            VALUES (\(approver), \(delegate), \(startsAt), \(endsAt), \(reason)) RETURNING id
            """)
        for try await id in rows.decode(Int64.self) { return id }
        throw PermanentFailure("the delegation was not stored")
    }

    /// The delegations in force or to come (of `approver`, or everyone's).
    func delegations(of approver: String?) async throws -> [Delegations.View] {
        let rows = try await database.query(
            """
            SELECT id, approver, delegate, starts_at, ends_at, reason FROM delegations
            WHERE ends_at > now() AND (\(approver)::text IS NULL OR approver = \(approver))
            ORDER BY starts_at, id
            """)
        var items: [Delegations.View] = []
        for try await (id, approver, delegate, starts, ends, reason) in rows.decode((Int64, String, String, Date, Date, String?).self) {
            items.append(Delegations.View(id: id, approver: approver, delegate: delegate, startsAt: starts, endsAt: ends, reason: reason))
        }
        return items
    }

    /// Ends delegation `id` now, if it is in force or to come and (with `owner`) theirs.
    func endDelegation(_ id: Int64, owner: String?) async throws -> Bool {
        try await database.returnsRow(
            """
            UPDATE delegations SET ends_at = greatest(now(), starts_at + interval '1 microsecond')
            WHERE id = \(id) AND ends_at > now() AND (\(owner)::text IS NULL OR approver = \(owner)) RETURNING id
            """)
    }
}

/// The two directory reads every new approval runs: prepared, so Postgres parses and plans
/// them once per connection.
protocol DirectoryPairs: PostgresPreparedStatement where Row == (String, String) {}

extension DirectoryPairs {
    func makeBindings() -> PostgresBindings { PostgresBindings() }

    func decodeRow(_ row: PostgresRow) throws -> (String, String) { try row.decode((String, String).self) }
}

/// Every group from the API: name and members (a JSON array).
struct AllGroups: DirectoryPairs {
    static let sql = "SELECT name, members::text FROM approver_groups"
}

/// The delegations in force now, oldest first (so the latest one wins): approver and delegate.
struct ActiveDelegations: DirectoryPairs {
    static let sql = "SELECT approver, delegate FROM delegations WHERE starts_at <= now() AND ends_at > now() ORDER BY created_at, id"
}
