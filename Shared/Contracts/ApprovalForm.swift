/// The one form an approval is shown with, on every channel (web, Slack, email, chat): a
/// title, a description, the facts to show, fields to fill in, and the buttons. Submitted
/// field values are checked against it by the approval service, whatever the channel.
public struct ApprovalForm: Codable, Sendable, Equatable {
    public enum FieldType: String, Codable, Sendable { case text, textarea, number, boolean, select, date }
    public enum ButtonStyle: String, Codable, Sendable { case primary, danger, plain }

    public struct Field: Codable, Sendable, Equatable {
        /// The key of the value in the submitted fields.
        public var name: String
        public var type: FieldType
        public var label: String
        public var required: Bool?
        public var `default`: JSONValue?
        /// `select`: the allowed values.
        public var options: [String]?
        /// `number`: bounds; `text`/`textarea`: length bounds.
        public var min: Double?
        public var max: Double?

        public init(
            name: String, type: FieldType, label: String, required: Bool? = nil, default: JSONValue? = nil, options: [String]? = nil, min: Double? = nil,
            max: Double? = nil
        ) {
            self.name = name
            self.type = type
            self.label = label
            self.required = required
            self.default = `default`
            self.options = options
            self.min = min
            self.max = max
        }
    }

    public struct Button: Codable, Sendable, Equatable {
        public var decision: Decision
        /// Shown after the decision's own name ("Approve: pay now"), never instead of it.
        public var label: String
        /// Accepted for compatibility and not used: each decision has a fixed look, so a form
        /// cannot make an approving button look like a rejection.
        public var style: ButtonStyle?

        public init(decision: Decision, label: String, style: ButtonStyle? = nil) {
            self.decision = decision
            self.label = label
            self.style = style
        }
    }

    /// Names the web form posts besides the fields, so no field may take them.
    public static let reservedFieldNames: Set<String> = ["csrf_token", "decision", "comment"]
    /// The web form names its inputs for `approve_with_changes` after this prefix and the
    /// input's key (`change.amount`); no field name may start with it.
    public static let changeFieldPrefix = "change."

    public var title: String
    public var description: String?
    /// The input fields to show, in order; every input field when absent.
    public var facts: [String]?
    public var fields: [Field]?
    /// One per outcome offered; approve and reject when absent.
    public var buttons: [Button]?

    /// Whether a decision needs fields filled in (a required field without a default), so
    /// that a one-click link or button cannot take it: the web page or a Slack modal asks.
    public var requiresInput: Bool {
        (fields ?? []).contains { $0.required == true && $0.default == nil }
    }

    public init(title: String, description: String? = nil, facts: [String]? = nil, fields: [Field]? = nil, buttons: [Button]? = nil) {
        self.title = title
        self.description = description
        self.facts = facts
        self.fields = fields
        self.buttons = buttons
    }
}
