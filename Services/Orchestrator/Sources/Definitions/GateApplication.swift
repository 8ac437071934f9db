import Contracts
import Foundation

/// Applies the gates in force to a resolved, valid definition. Pure: the same gates, input
/// and steps give the same answer, so it is tested offline.
///
/// For each gate that matches (its type or `*`, and its `when` over the input unless that
/// surely fails: `Expression.surelyFails`), in name order:
/// - the first step that acts (`Gate.acts`; the end of the workflow when none does, since an
///   agent may act on the workflow's completion) must be preceded by the gate's approval.
///   An unconditional approval step before it with exactly the gate's approval counts (an
///   admin's template may carry it); otherwise the approval is inserted just before that
///   step as `gate.<name>`;
/// - no `next` may jump from before that approval to after it, and no `revise_step` may run
///   a step that acts again without running the approval again (422), so no path skips it.
///
/// An untrusted definition (an agent's own steps, not an admin's template) may add approval
/// steps and approvers the system knows (`knownApproversOnly`), never weaken: each `GateOption` it uses is refused (403 naming the
/// step and option) unless a matching gate lists it in `agent_may`.
enum GateApplication {
    /// A gate as it was applied to one workflow, for its history.
    struct Applied: Sendable, Equatable {
        var name: String
        var version: Int
        var step: String
        var inserted: Bool

        var json: JSONValue {
            .object(["name": .string(name), "version": .number(Double(version)), "step": .string(step), "inserted": .bool(inserted)])
        }
    }

    /// Why an agent may not submit this definition (403); nothing was stored.
    struct Refused: Error, CustomStringConvertible {
        let option: String
        let description: String
    }

    /// What only the orchestrator writes into a definition: `gate.` step names and
    /// `approval.gate`. Nil when `steps` use neither.
    static func reservedProblem(in steps: [StepDefinition]) -> String? {
        for (index, step) in steps.enumerated() {
            if step.name.hasPrefix(Gate.stepPrefix) {
                return "steps[\(index)] (\(step.name)): names starting with \(Gate.stepPrefix) belong to admins' gates"
            }
            if step.approval?.gate != nil { return "steps[\(index)] (\(step.name)): approval.gate is set by the orchestrator, not by a definition" }
        }
        return nil
    }

    static func apply(
        _ gates: [GateStore.Version], to steps: [StepDefinition], input: JSONObject, trusted: Bool
    ) throws -> (steps: [StepDefinition], applied: [Applied]) {
        let scope: JSONObject = ["input": .object(input), "outputs": .object([:])]
        let matching = gates.filter { version in
            guard let gate = version.gate else { return false }
            guard let when = gate.when else { return true }
            // A gate fails closed: it applies unless its condition surely does not hold (an
            // unreadable condition, a missing or ill-typed value all apply it).
            guard let condition = try? Expression(when) else { return true }
            return !condition.surelyFails(in: scope)
        }
        if let problem = reservedProblem(in: steps) { throw Submissions.Invalid(description: problem) }
        if !trusted {
            let allowed = Set(matching.flatMap { $0.gate?.agentMay ?? [] })
            for (index, step) in steps.enumerated() {
                guard let approval = step.approval else { continue }
                if let option = GateOption.used(by: approval).first(where: { !allowed.contains($0) }) {
                    throw Refused(
                        option: option.rawValue,
                        description: "steps[\(index)] (\(step.name)): \(option.rawValue) weakens the approval; only an admin's template or gate may use it")
                }
            }
        }
        var result = steps
        if !trusted {
            // An agent names its approvers: the approval service accepts only people it knows.
            for index in result.indices where result[index].approval != nil { result[index].approval?.knownApproversOnly = true }
        }
        var applied: [Applied] = []
        for version in matching {
            guard let gate = version.gate else { continue }
            let acting = result.firstIndex(where: gate.acts) ?? result.count
            let present = result[..<acting].lastIndex { $0.kind == .approval && $0.when == nil && $0.approval == gate.approval }
            let position: Int
            let rule = "\(version.name)@\(version.version)"
            if let present {
                position = present
                result[present].approval?.gate = rule
                applied.append(Applied(name: version.name, version: version.version, step: result[present].name, inserted: false))
            } else {
                position = acting
                let name = Gate.stepName(of: version.name)
                var approval = gate.approval
                approval.gate = rule
                result.insert(StepDefinition(name: name, kind: .approval, approval: approval), at: position)
                applied.append(Applied(name: version.name, version: version.version, step: name, inserted: true))
            }
            let names = Dictionary(result.enumerated().map { ($0.element.name, $0.offset) }) { first, _ in first }
            for index in 0..<position {
                if let next = result[index].next, let target = names[next], target > position {
                    throw Submissions.Invalid(
                        description: "steps[\(index)] (\(result[index].name)): next jumps over the approval that gate \(version.name) requires before \(next)")
                }
            }
        }
        // A request for changes runs its steps again from `revise_step`: when that range holds a
        // step that acts but not the gate's approval, the step would act again unapproved.
        for (version, gateApplied) in zip(matching, applied) {
            guard let gate = version.gate, let gatePosition = result.firstIndex(where: { $0.name == gateApplied.step }) else { continue }
            for (index, step) in result.enumerated() {
                guard let revise = step.approval?.reviseStep, let target = result.firstIndex(where: { $0.name == revise }),
                    target > gatePosition, target <= index, result[target...index].contains(where: gate.acts)
                else { continue }
                throw Submissions.Invalid(
                    description:
                        "steps[\(index)] (\(step.name)): revise_step \(revise) would run a step that acts again without the approval gate \(version.name) requires"
                )
            }
        }
        return (result, applied)
    }
}
