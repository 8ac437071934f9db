import Contracts
import Testing

@testable import OrchestratorService

@Suite struct ExpressionTests {
    static let scope: JSONObject = [
        "input": .object([
            "amount": 6000, "currency": "EUR", "vip": true, "tags": .array(["urgent", "new"]),
            "payee": .object(["country": "DE"]),
        ]),
        "outputs": .object(["check": .object(["risk": "low", "score": .number(0.2)])]),
    ]

    func holds(_ source: String) throws -> Bool {
        try Expression(source).holds(in: Self.scope)
    }

    @Test func comparesNumbersStringsAndPaths() throws {
        #expect(try holds("input.amount >= 5000"))
        #expect(try !holds("input.amount < 5000"))
        #expect(try holds("input.currency == 'EUR' and input.payee.country != \"FR\""))
        #expect(try holds("outputs.check.score <= 0.5"))
        #expect(try holds("input.tags[0] == 'urgent'"))
        #expect(try holds("input.amount > -1"))
        #expect(try holds("'a' < 'b'"))
    }

    @Test func combinesWithAndOrNotAndParentheses() throws {
        #expect(try holds("not (input.amount < 5000) and (input.vip or input.currency == 'USD')"))
        #expect(try !holds("not input.vip"))
        #expect(try holds("input.amount < 5000 or outputs.check.risk == 'low'"))
        #expect(try holds("not not input.vip"))
    }

    @Test func membershipInListsAndStrings() throws {
        #expect(try holds("input.currency in ['EUR', 'USD']"))
        #expect(try holds("'urgent' in input.tags"))
        #expect(try holds("input.currency not in ['GBP']"))
        #expect(try holds("'UR' in input.currency"))
        #expect(try !holds("input.amount in 'text'"))
    }

    @Test func unknownPathsAreNullAndMixedComparisonsDoNotHold() throws {
        #expect(try holds("input.missing == null"))
        #expect(try !holds("input.missing > 1"))
        #expect(try !holds("input.missing < 1"))
        #expect(try !holds("input.currency > 5"))
        #expect(try !holds("input.amount.deeper.still == 1"))
        #expect(try !holds("input.tags[99] == 'x'"))
        #expect(try !holds("input.amount"))  // a number is not true
    }

    @Test(arguments: [
        ("", "is empty"),
        ("input.amount <", "ends too early"),
        ("input.amount < 5000 )", "unexpected )"),
        ("system.exit == 1", "unknown name system"),
        ("input.amount ; drop", "unexpected ';'"),
        ("'unterminated", "is not closed"),
        ("input.amount < 1e400", "unexpected e400"),
        ("input.x == 1.2.3", "not a plain number"),
        ("input.amount == 12345678901234567890123456789012", "not a plain number"),
        ("input[0] == input.", "ends too early"),
    ])
    func refusesMalformedInputWithAReason(source: String, reason: String) {
        #expect {
            _ = try Expression(source)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func refusesHostileSizesBeforeEvaluating() {
        let deep = String(repeating: "(", count: 200) + "input.a == 1" + String(repeating: ")", count: 200)
        #expect(throws: ExpressionError.self) { try Expression(deep) }
        let nots = String(repeating: "not ", count: 100) + "input.vip"
        #expect(throws: ExpressionError.self) { try Expression(nots) }
        let long = "input.a == '" + String(repeating: "x", count: 600) + "'"
        #expect(throws: ExpressionError.self) { try Expression(long) }
        let huge = String(repeating: "input.a == 1 or ", count: 200) + "true"
        #expect(throws: ExpressionError.self) { try Expression(huge) }
        let list = "input.a in [" + (0..<150).map(String.init).joined(separator: ",") + "]"
        #expect(throws: ExpressionError.self) { try Expression(list) }
        let nestedLists = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: ExpressionError.self) { try Expression("input.a in " + nestedLists) }
    }

    @Test func longChainsOfAndParseWithoutDeepRecursion() throws {
        let chain = (0..<60).map { "input.amount > \($0)" }.joined(separator: " and ")
        #expect(try holds(chain))
    }
}
