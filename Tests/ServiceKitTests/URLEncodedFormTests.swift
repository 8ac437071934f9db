import Testing

@testable import ServiceKit

/// Form bodies as browsers and Slack post them, read by Hummingbird's decoder.
@Suite struct URLEncodedFormTests {
    @Test func namesAndValuesArePercentAndPlusDecoded() throws {
        let fields = try URLEncodedForm.parse("decision=approve&comment=fine+by%20me%21&field.amount=5%2C500&empty=")
        #expect(fields == ["decision": "approve", "comment": "fine by me!", "field.amount": "5,500", "empty": ""])
        #expect(try URLEncodedForm.parse(URLEncodedForm.encode(["a b": "c&d=e"])) == ["a b": "c&d=e"])
    }

    @Test func aRepeatedOrNestedNameIsRefusedWithTheReason() throws {
        #expect { try URLEncodedForm.parse("decision=reject&decision=approve") } throws: {
            ($0 as? APIError)?.code == "repeated_field" && "\($0)".contains("decision")
        }
        #expect { try URLEncodedForm.parse("field[a]=1") } throws: { ($0 as? APIError)?.code == "invalid_form" }
    }
}
