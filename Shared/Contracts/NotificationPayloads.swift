import Foundation

/// A service asks the notifier to tell people something (`hitl.notifications`).
public struct NotificationRequested: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.notificationRequested]
    public var eventType: EventType { .notificationRequested }

    /// Why people are told: `approval_requested`, `approval_decided`, `approval_expired`.
    public var reason: String
    public var notificationId: String
    public var workflowId: String
    public var approvalId: String?
    public var recipients: [String]
    public var subject: String
    public var text: String
    /// Named links anyone on the topic may read (the approval's API URLs).
    public var links: [String: String]
    /// The personal links (`web:<approver>` sign-in links, `approve:<approver>` and
    /// `reject:<approver>` decision links), which are credentials: sealed for the notifier
    /// (`LinkSeal`), never in clear on Kafka.
    public var sealedLinks: String?
    /// For approval requests: the form and the facts, so each channel renders its own way.
    public var form: ApprovalForm?
    public var facts: JSONObject?
    /// For approval requests: the form as markdown, for chat frontends (the decision links
    /// are personal, so they are in `links`, not in this text).
    public var markdown: String?

    public init(
        reason: String, notificationId: String, workflowId: String, approvalId: String?, recipients: [String], subject: String, text: String,
        links: [String: String], sealedLinks: String? = nil, form: ApprovalForm? = nil, facts: JSONObject? = nil, markdown: String? = nil
    ) {
        self.sealedLinks = sealedLinks
        self.markdown = markdown
        self.form = form
        self.facts = facts
        self.reason = reason
        self.notificationId = notificationId
        self.workflowId = workflowId
        self.approvalId = approvalId
        self.recipients = recipients
        self.subject = subject
        self.text = text
        self.links = links
    }
}

extension NotificationRequested {
    /// Whether a link's key names its recipient (`web:<approver>`, `approve:<approver>`):
    /// a personal link, a credential that travels only in `sealedLinks`.
    public static func isPersonal(linkKey key: String) -> Bool { key.contains(":") }

    /// The links anyone may read: those of `links` that are not personal.
    public var sharedLinks: [String: String] { links.filter { !Self.isPersonal(linkKey: $0.key) } }
}

/// A notification reached its channel (`hitl.notification.outcomes`).
public struct NotificationDelivered: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.notificationDelivered]
    public var eventType: EventType { .notificationDelivered }

    public var notificationId: String
    public var workflowId: String
    public var channel: String
    public var attempts: Int
    public var deliveredAt: Date

    public init(notificationId: String, workflowId: String, channel: String, attempts: Int, deliveredAt: Date) {
        self.notificationId = notificationId
        self.workflowId = workflowId
        self.channel = channel
        self.attempts = attempts
        self.deliveredAt = deliveredAt
    }
}

/// A notification could not be delivered after the last attempt (`hitl.notification.outcomes`).
public struct NotificationFailed: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.notificationFailed]
    public var eventType: EventType { .notificationFailed }

    public var notificationId: String
    public var workflowId: String
    public var channel: String
    public var attempts: Int
    public var error: String
    public var failedAt: Date

    public init(notificationId: String, workflowId: String, channel: String, attempts: Int, error: String, failedAt: Date) {
        self.notificationId = notificationId
        self.workflowId = workflowId
        self.channel = channel
        self.attempts = attempts
        self.error = error
        self.failedAt = failedAt
    }
}

/// Ops ask the notifier to try a failed delivery again (`hitl.notifications`): it is what a
/// delivery's dead letter holds, so replaying the dead letter retries the delivery, with
/// its attempts counted afresh. A delivery that is not failed is left alone.
public struct NotificationRetryRequested: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.notificationRetryRequested]
    public var eventType: EventType { .notificationRetryRequested }

    public var notificationId: String
    public var workflowId: String
    public var channel: String
    /// Empty for a channel that delivers once for all recipients (webhook, log).
    public var recipient: String

    public init(notificationId: String, workflowId: String, channel: String, recipient: String) {
        self.notificationId = notificationId
        self.workflowId = workflowId
        self.channel = channel
        self.recipient = recipient
    }
}
