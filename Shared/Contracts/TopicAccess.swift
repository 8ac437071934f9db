/// The Kafka identities of the system, one per service plus the agents'.
public enum KafkaPrincipal: String, CaseIterable, Sendable {
    case orchestrator, approval, notifier, timeout
    /// Agents and task workers: they submit workflows and task results and read what
    /// the orchestrator tells them.
    case agent
}

/// Who may write and who may read each topic: the ACLs the broker enforces
/// (docker-compose.yml's `kafka-topics` job creates exactly these; a test keeps them in
/// step), and what the services check of themselves before they publish or subscribe.
///
/// The orchestrator may write every topic because it carries out ops' dead-letter
/// replays (`hitl dlq replay`), which go back to the topic the record came from. That
/// gives it nothing it does not have already as the owner of workflow state, except
/// writing decisions, and a decision counts only with a receipt signed by the approval
/// service's key. What the ACLs do stop: an agent writing anything but requests and task
/// results, and any service but the approval service and the replaying orchestrator
/// writing decisions or the timeout service's firings.
public enum TopicAccess {
    public static func writers(of topic: Topic) -> Set<KafkaPrincipal> {
        var writers: Set<KafkaPrincipal> = [.orchestrator]
        switch topic {
        case .workflowRequests, .taskResults: writers.insert(.agent)
        case .approvalDecisions: writers.insert(.approval)
        case .notifications: writers.formUnion([.approval, .notifier])
        case .notificationOutcomes: writers.insert(.notifier)
        case .timerRequests: writers.formUnion([.approval, .notifier])
        case .deadLetter: writers.formUnion([.approval, .notifier, .timeout])
        default: if topic.isTimerFirings { writers.insert(.timeout) }
        }
        return writers
    }

    public static func readers(of topic: Topic) -> Set<KafkaPrincipal> {
        switch topic {
        case .workflowRequests, .approvalDecisions, .taskResults, .deadLetter: [.orchestrator]
        case .workflowEvents, .tasks: [.agent]
        case .approvalRequests: [.approval]
        case .notifications: [.notifier]
        case .timerRequests: [.timeout]
        // Nobody consumes delivery outcomes yet; ops read them with the admin identity.
        case .notificationOutcomes: []
        default:
            // A timer owner reads its own firings.
            if let owner = TimerOwner.allCases.first(where: { topic == .timerFirings(for: $0) }), let principal = KafkaPrincipal(rawValue: owner.rawValue) {
                [principal]
            } else {
                []
            }
        }
    }

    /// Whether `service` may publish to `topic`; true for names that are not the system's
    /// services or topics (tests' own). Looked up in a table made once: every outbox row asks.
    public static func may(_ service: String, write topic: String) -> Bool {
        guard let principal = KafkaPrincipal(rawValue: service), let writers = writable[topic] else { return true }
        return writers.contains(principal)
    }

    private static let writable: [String: Set<KafkaPrincipal>] = Dictionary(uniqueKeysWithValues: Topic.all.map { ($0.rawValue, writers(of: $0)) })

    /// Whether `service` may consume `topic`; true for names that are not the system's.
    public static func may(_ service: String, read topic: Topic) -> Bool {
        guard let principal = KafkaPrincipal(rawValue: service), Topic.all.contains(topic) else { return true }
        return readers(of: topic).contains(principal)
    }
}

extension Topic {
    var isTimerFirings: Bool { rawValue.hasPrefix("hitl.timer.fired.") }
}
