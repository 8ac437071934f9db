import Contracts
import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceKit
import ServiceLifecycle

/// Durable deliveries. A notification becomes `deliveries` rows (one per channel, or per
/// recipient) in the transaction that consumes it; this worker claims due rows (leasing
/// them for two minutes, so a crashed worker's rows come back), delivers them concurrently,
/// and records each attempt.
///
/// - A failed attempt waits for a durable timer in the timeout service (exponential backoff
///   with full jitter, or the channel's own `Retry-After`), so a retry survives any crash.
/// - Each channel has a circuit breaker (`channel_state`): after `breakerThreshold`
///   failures in a row it opens for `breakerCooldown`, then lets one probe through; its
///   rows wait meanwhile, and the other channels' rows go on.
/// - After the last attempt (or a permanent refusal) the delivery is `failed`,
///   `hitl.notification.failed.v1` is published, and a dead letter holds a retry request:
///   replaying it tries the delivery again.
struct DeliveryWorker: SupervisedLoop {
    let runtime: ServiceRuntime
    let settings: NotifierSettings
    let channels: [String: any NotificationChannel]
    let wakeup: Wakeup
    /// Deliveries leased on insert, and the breakers this process saw open.
    let handOff: DeliveryHandOff
    var batchSize = 64
    var lease: Duration { handOff.lease }

    static let retryTimerPrefix = "delivery:"

    /// Records the deliveries of a new notification (inside the consuming transaction), with
    /// those of the other notifications the transaction consumes, in one statement at commit:
    /// one per channel, or one per recipient on channels that address each recipient. Those
    /// of channels whose breaker is closed are leased to this process at once and handed to
    /// the worker after the commit (`DeliveryHandOff`).
    static func enqueue(
        _ notification: NotificationRequested, channels: [String: any NotificationChannel], handOff: DeliveryHandOff, in transaction: Transaction,
        wakeup: Wakeup
    ) async throws {
        var rows: [EnqueueDeliveries.Delivery] = []
        for (name, channel) in channels.sorted(by: { $0.key < $1.key }) {
            for recipient in channel.perRecipient ? notification.recipients : [""] {
                rows.append(EnqueueDeliveries.Delivery(id: UUID(), channel: name, recipient: recipient, leased: !handOff.isTripped(name)))
            }
        }
        let enqueued = EnqueueDeliveries.Notification(
            notification: notification, json: try JSONColumn.text(notification), deliveries: rows, handOff: handOff, wakeup: wakeup)
        try transaction.batch(enqueued, into: EnqueueDeliveries.self)
    }

    var name: String { "deliveries" }
    var stallAfter: Duration { .seconds(60) }

    func run(heartbeat: LoopWatchdog.Heartbeat) async throws {
        // One for each run: a statement a Postgres restart left unanswered holds up only the
        // run the watchdog gave up on.
        let successes = recordingSuccesses()
        await LeasedWorkLoop.run(
            "Delivery", slots: batchSize, wakeup: wakeup, idle: .seconds(2), heartbeat: heartbeat, logger: runtime.logger,
            claim: claim, handle: { await attempt($0, recording: successes) })
    }

    /// Records successes in shared statements (group commit): deliveries finish concurrently,
    /// and the successes that finish while one statement runs are recorded by the next, one
    /// commit for all of them instead of one each. Each answer is true when recorded, false
    /// when the statement did not answer within 20 s (it may still commit: recording again
    /// would publish a reported success twice); nil when it failed.
    private func recordingSuccesses() -> GroupCommit<RecordDelivered.Success, Bool> {
        GroupCommit(maxItems: batchSize) { [runtime] successes in
            switch await Deadline.value(within: .seconds(20), { try await Self.record(successes, runtime: runtime) }) {
            case .success?: return Array(repeating: true, count: successes.count)
            case nil: return Array(repeating: false, count: successes.count)
            case .failure?: return nil
            }
        }
    }

    /// Records `successes` in one statement, and wakes the relay for the events it wrote.
    private static func record(_ successes: [RecordDelivered.Success], runtime: ServiceRuntime) async throws {
        _ = try await runtime.database.execute(RecordDelivered(successes: successes))
        if successes.contains(where: { !$0.events.isEmpty }) { runtime.relay.wake() }
    }

    struct Claimed: Sendable {
        let id: UUID
        let channel: String
        /// Empty for a channel that delivers once for all recipients.
        let recipient: String
        let attempt: Int
        let notification: NotificationRequested
    }

    /// The deliveries to attempt: those handed over in memory and, every 2 s, the stored
    /// ones that are due (retries, deliveries of a tripped channel, leases a crash left).
    /// Claiming the stored ones whenever slots were left cost a transaction per hand-off
    /// that nearly always found nothing. They are claimed at once when something made them
    /// due (see `DeliveryHandOff.claimDue`), again at once while claims come back full (a
    /// backlog drains at the channels' pace), and otherwise every 2 to 4 s.
    private func claim(limit: Int) async throws -> [Claimed] {
        let handed = handOff.take(limit)
        guard handOff.claimDue(every: .seconds(2)) else { return handed }
        let wanted = max(1, limit - handed.count)
        let stored = try await claimStored(limit: wanted)
        if stored.count >= wanted { handOff.claimFilled() }
        return handed + stored
    }

    /// Claims due rows of channels whose breaker is closed, and one row (the probe) of each
    /// channel whose breaker's cool-down is over.
    private func claimStored(limit: Int) async throws -> [Claimed] {
        let leaseSeconds = Double(lease.components.seconds)
        let threshold = settings.breakerThreshold
        let cooldown = Double(settings.breakerCooldown.components.seconds)
        return try await runtime.database.transaction { transaction in
            var tripped: [String] = []
            var probing: [String] = []
            let states = try await transaction.query(
                "SELECT channel, open_until <= now() FROM channel_state WHERE failures >= \(threshold) FOR UPDATE")
            for try await (channel, cooledDown) in states.decode((String, Bool).self) {
                tripped.append(channel)
                if cooledDown { probing.append(channel) }
            }
            if !probing.isEmpty {
                // Only this probe goes until it succeeds (closing the breaker) or fails (re-opening it).
                try await transaction.query(
                    "UPDATE channel_state SET open_until = now() + make_interval(secs => \(cooldown)) WHERE channel = ANY(\(probing))")
            }
            handOff.setTripped(Set(tripped))
            var claimed = try await take(excluding: tripped, limit: limit, leaseSeconds: leaseSeconds, in: transaction)
            for channel in probing {
                claimed += try await take(probe: channel, limit: 1, leaseSeconds: leaseSeconds, in: transaction)
            }
            return claimed
        }
    }

    /// Leases due pending rows, counting the attempt: up to `batchSize` of the channels not
    /// `tripped`, or the one oldest of `probe`'s.
    private func take(excluding tripped: [String] = [], probe: String? = nil, limit: Int, leaseSeconds: Double, in transaction: Transaction) async throws
        -> [Claimed]
    {
        let rows = try await transaction.query(
            """
            UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => \(leaseSeconds))
            WHERE id IN (SELECT id FROM deliveries
                         WHERE status = 'pending' AND next_attempt_at <= now()
                           AND CASE WHEN \(probe)::text IS NULL THEN channel <> ALL(\(tripped)) ELSE channel = \(probe) END
                         ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING id, channel, recipient, attempts, notification::text
            """)
        var claimed: [Claimed] = []
        for try await (id, channel, recipient, attempt, json) in rows.decode((UUID, String, String, Int, String).self) {
            claimed.append(
                Claimed(
                    id: id, channel: channel, recipient: recipient, attempt: attempt,
                    notification: try WireCoding.decode(NotificationRequested.self, from: Array(json.utf8))))
        }
        return claimed
    }

    /// The notification with its sealed personal links opened, for the channel to use.
    private func opened(_ notification: NotificationRequested) throws -> NotificationRequested {
        guard let sealed = notification.sealedLinks else { return notification }
        guard let seal = settings.linkSeal, let personal = try? seal.open(sealed) else {
            throw DeliveryFailure("its links are sealed, and HITL_NOTIFICATION_KEY does not open them", permanent: true)
        }
        // Personal links come only from the seal: a clear one (written by whoever could write
        // the topic) is dropped, never sent in place of the real one.
        var opened = notification
        opened.links = notification.sharedLinks.merging(personal) { _, sealed in sealed }
        opened.sealedLinks = nil
        return opened
    }

    private func attempt(_ delivery: Claimed, recording successes: GroupCommit<RecordDelivered.Success, Bool>) async {
        var failure: DeliveryFailure?
        if let channel = channels[delivery.channel] {
            do {
                let notification = try opened(delivery.notification)
                try await channel.deliver(notification, to: delivery.recipient.isEmpty ? nil : delivery.recipient, attempt: delivery.attempt)
            } catch let error as DeliveryFailure {
                failure = error
            } catch {
                failure = DeliveryFailure(ErrorText.describe(error))
            }
        } else {
            failure = DeliveryFailure("channel \(delivery.channel) is not configured")
        }
        Counter(label: "hitl_delivery_attempts_total", dimensions: [("channel", delivery.channel), ("result", failure == nil ? "delivered" : "failed")])
            .increment()
        do {
            try await record(delivery, failure: failure, successes: successes)
        } catch {
            // The lease expires and the delivery is attempted again: at least once, never lost.
            runtime.logger.warning("Delivery outcome not recorded", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
        }
    }

    private func record(_ delivery: Claimed, failure: DeliveryFailure?, successes: GroupCommit<RecordDelivered.Success, Bool>) async throws {
        let notification = delivery.notification
        guard let failure else {
            // The common case shares one statement with the other successes of the moment:
            // the attempt, the delivery's status, the channel's breaker closed, and (when
            // reported) the event.
            let delivered =
                settings.reportDelivered
                ? [
                    try OutboxRow(
                        EventEnvelope(
                            NotificationDelivered(
                                notificationId: notification.notificationId, workflowId: notification.workflowId, channel: delivery.channel,
                                attempts: delivery.attempt, deliveredAt: Date()),
                            source: runtime.database.source, subject: notification.workflowId),
                        to: .notificationOutcomes)
                ] : []
            let success = RecordDelivered.Success(delivery: delivery.id, attempt: delivery.attempt, channel: delivery.channel, events: delivered)
            switch await successes.run([success]) {
            case [true]?: break
            case nil:
                // The shared statement failed: this one alone, so that it fails for its own
                // reason (logged by the caller) or not at all.
                try await Self.record([success], runtime: runtime)
            default:
                // Unanswered: if it never commits, the lease brings the delivery back.
                throw DatabaseUnavailable(reason: "recording the delivery did not answer within 20 s")
            }
            handOff.close(delivery.channel)
            return
        }
        let giveUp = failure.permanent || delivery.attempt >= settings.maxAttempts
        let detail = delivery.recipient.isEmpty ? failure.description : "\(delivery.recipient): \(failure.description)"
        try await runtime.database.transaction { transaction in
            try await transaction.query(
                """
                INSERT INTO delivery_attempts (delivery_id, attempt, succeeded, detail)
                VALUES (\(delivery.id), \(delivery.attempt), false, \(detail))
                ON CONFLICT DO NOTHING
                """)
            try await countFailure(of: delivery.channel, failure, in: transaction)
            if giveUp {
                try await transaction.query(
                    "UPDATE deliveries SET status = 'failed', closed_at = now(), last_error = \(detail) WHERE id = \(delivery.id)")
                try transaction.publish(
                    NotificationFailed(
                        notificationId: notification.notificationId, workflowId: notification.workflowId, channel: delivery.channel, attempts: delivery.attempt,
                        error: detail, failedAt: Date()),
                    to: .notificationOutcomes, subject: notification.workflowId)
                let retry = try transaction.envelope(
                    NotificationRetryRequested(
                        notificationId: notification.notificationId, workflowId: notification.workflowId, channel: delivery.channel,
                        recipient: delivery.recipient),
                    subject: notification.workflowId)
                try transaction.publish(
                    DeadLettered.replayable(
                        retry, to: .notifications, service: Notifier.name,
                        error: "delivery of \(notification.notificationId) on \(delivery.channel) gave up after \(delivery.attempt) attempts: \(detail)",
                        attempts: delivery.attempt, firstAttemptAt: Date()),
                    to: .deadLetter, subject: notification.workflowId)
            } else {
                let wait = failure.retryAfter ?? settings.retryBackoff.delay(attempt: delivery.attempt)
                let due = Date().addingTimeInterval(wait.timeInterval)
                try await transaction.query(
                    "UPDATE deliveries SET status = 'waiting', last_error = \(detail), next_attempt_at = \(due) WHERE id = \(delivery.id)")
                try transaction.publish(
                    TimerScheduled(
                        owner: .notifier, key: "\(Self.retryTimerPrefix)\(delivery.id.uuidString.lowercased()):\(delivery.attempt)",
                        workflowId: notification.workflowId, dueAt: due, payload: ["delivery_id": .string(delivery.id.uuidString.lowercased())]),
                    to: .timerRequests, subject: notification.workflowId)
            }
        }
    }

    /// A failed delivery counts for its channel's breaker; a permanent refusal or a rate limit
    /// is about one recipient or one moment, not the channel, and does not.
    private func countFailure(of channel: String, _ failure: DeliveryFailure, in transaction: Transaction) async throws {
        guard !failure.permanent, failure.retryAfter == nil else { return }
        let cooldown = Double(settings.breakerCooldown.components.seconds)
        let rows = try await transaction.query(
            """
            INSERT INTO channel_state (channel, failures) VALUES (\(channel), 1)
            ON CONFLICT (channel) DO UPDATE SET failures = channel_state.failures + 1
            RETURNING failures
            """)
        for try await failures in rows.decode(Int.self) where failures >= settings.breakerThreshold {
            try await transaction.query(
                "UPDATE channel_state SET open_until = now() + make_interval(secs => \(cooldown)) WHERE channel = \(channel)")
            handOff.trip(channel)
            if failures == settings.breakerThreshold {
                runtime.logger.warning("Channel breaker opened", metadata: ["channel": "\(channel)", "failures": "\(failures)"])
                Counter(label: "hitl_delivery_breaker_opened_total", dimensions: [("channel", channel)]).increment()
            }
        }
    }

    // MARK: - Events

    /// A retry timer fired: the delivery is due again (a stale timer changes nothing).
    static func retryDue(_ fired: TimerFired, in transaction: Transaction, handOff: DeliveryHandOff, wakeup: Wakeup) async throws {
        guard fired.key.hasPrefix(retryTimerPrefix), let id = fired.payload["delivery_id"]?.stringValue.flatMap(UUID.init(uuidString:)),
            let attempt = fired.key.split(separator: ":").last.flatMap({ Int($0) })
        else { return }
        try await transaction.query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = now() WHERE id = \(id) AND status = 'waiting' AND attempts = \(attempt)")
        handOff.claimStored(after: transaction, wakeup: wakeup)
    }

    /// Ops retry a failed delivery (a replayed dead letter): attempts start again.
    static func retryRequested(
        _ request: NotificationRetryRequested, in transaction: Transaction, handOff: DeliveryHandOff, wakeup: Wakeup
    ) async throws {
        try await transaction.query(
            """
            UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), closed_at = NULL
            WHERE notification_id = \(request.notificationId) AND channel = \(request.channel) AND recipient = \(request.recipient) AND status = 'failed'
            """)
        handOff.claimStored(after: transaction, wakeup: wakeup)
    }
}
