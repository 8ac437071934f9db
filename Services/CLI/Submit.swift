import AgentMCP
import ArgumentParser
import Contracts
import Foundation
import ServiceKit

/// `hitl submit --file requests.jsonl` or `hitl submit --csv rows.csv --template NAME`:
/// one workflow per line or row, each reported with its workflow id or its error.
///
/// Safe to run twice: every request carries an idempotency key, so a second run answers
/// with the workflows of the first. JSON lines carry their own keys; a CSV row's key is its
/// `idempotency_key` column, or else derived from the template and the row's content (two
/// identical rows are one workflow).
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit workflows in bulk, from JSON lines or from CSV rows and a template.",
        discussion: """
            CSV: the first row names the columns; each other row becomes one workflow whose input has \
            one field per column (plain numbers become numbers, true/false booleans, empty cells are \
            left out). The columns idempotency_key, type and requester, when present, set those fields.
            Prints one line per row: `row N: created|existing <id> <status>` or `row N: error: <reason>`; \
            exits 1 when any row failed.
            """)

    @OptionGroup var target: OrchestratorTarget
    @Option(help: "A file of JSON lines, one workflow request per line.") var file: String?
    @Option(help: "A CSV file, one workflow per row (needs --template).") var csv: String?
    @Option(help: "The template every CSV row runs.") var template: String?
    @Option(help: "The template version (default: its latest).") var templateVersion: Int?
    @Option(help: "The workflow type of CSV rows (default: the template's name).") var type: String?
    @Option(help: "Who submits the CSV rows.") var requester = "hitl-cli"

    func validate() throws {
        guard (file == nil) != (csv == nil) else { throw ValidationError("give either --file or --csv") }
        if csv != nil, template == nil { throw ValidationError("--csv needs --template") }
        if file != nil, template != nil { throw ValidationError("--template goes with --csv; JSON lines name their own") }
    }

    func run() async throws {
        let requests: [(row: Int, request: Result<JSONObject, SubmitRowError>)]
        if let file {
            requests = try Self.jsonLines(String(contentsOfFile: file, encoding: .utf8))
        } else {
            let rows = try CSVReader.parse(String(contentsOfFile: csv!, encoding: .utf8))
            requests = try csvRequests(rows)
        }
        var counts: [String: Int] = [:]
        for (row, request) in requests {
            let line: String
            switch request {
            case .failure(let error):
                line = "row \(row): error: \(error.reason)"
                counts["failed", default: 0] += 1
            case .success(let body):
                do {
                    let (created, answer) = try await target.submit(body)
                    let outcome = created ? "created" : "existing"
                    line = "row \(row): \(outcome) \(answer["id"]?.text ?? "?") \(answer["status"]?.text ?? "?")"
                    counts[outcome, default: 0] += 1
                } catch {
                    line = "row \(row): error: \(error)"
                    counts["failed", default: 0] += 1
                }
            }
            print(line)
        }
        let summary = ["created", "existing", "failed"].map { "\(counts[$0, default: 0]) \($0)" }.joined(separator: ", ")
        FileHandle.standardError.write(Data("\(requests.count) rows: \(summary)\n".utf8))
        if counts["failed", default: 0] > 0 { throw ExitCode(1) }
    }

    static func jsonLines(_ text: String) -> [(row: Int, request: Result<JSONObject, SubmitRowError>)] {
        text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { index, line in
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            do {
                return (index + 1, .success(try WireCoding.decode(JSONObject.self, from: Array(line.utf8))))
            } catch {
                return (index + 1, .failure(SubmitRowError(reason: "not a JSON object: \(error)")))
            }
        }
    }

    func csvRequests(_ rows: [[String]]) throws -> [(row: Int, request: Result<JSONObject, SubmitRowError>)] {
        guard let header = rows.first else { throw ValidationError("the CSV file is empty") }
        let reserved: Set<String> = ["idempotency_key", "type", "requester"]
        return rows.dropFirst().enumerated().compactMap { index, cells in
            let row = index + 2
            if cells.count == 1 && cells[0].isEmpty { return nil }
            guard cells.count == header.count else {
                return (row, .failure(SubmitRowError(reason: "has \(cells.count) cells; the header names \(header.count) columns")))
            }
            var input: JSONObject = [:]
            var fields: [String: String] = [:]
            for (column, cell) in zip(header, cells) {
                if reserved.contains(column) {
                    fields[column] = cell
                } else if let value = CSVReader.value(of: cell) {
                    input[column] = value
                }
            }
            let content = (try? JSONColumn.text(input)) ?? ""
            let key =
                fields["idempotency_key"].flatMap { $0.isEmpty ? nil : $0 }
                ?? "csv:\(template!):\(Digest.sha256Hex(Array(content.utf8)).prefix(32))"
            var body: JSONObject = [
                "idempotency_key": .string(key), "type": .string(fields["type"] ?? type ?? template!),
                "requester": .string(fields["requester"] ?? requester), "input": .object(input), "template": .string(template!),
            ]
            if let templateVersion { body["template_version"] = .number(Double(templateVersion)) }
            return (row, .success(body))
        }
    }
}

struct SubmitRowError: Error {
    let reason: String
}

extension OrchestratorTarget {
    /// Submits one workflow request; answers whether it is new (201, not 200) and the answer.
    func submit(_ body: JSONObject) async throws -> (created: Bool, answer: JSONObject) {
        try await api { orchestrator in
            switch try await orchestrator.submitWorkflow(body: .json(JSONBridge.typed(body))) {
            case .created(let created): (true, try JSONBridge.object(try created.body.json))
            case .ok(let existing): (false, try JSONBridge.object(try existing.body.json))
            default: throw ValidationError("the orchestrator answered the submission with neither 201 nor 200")
            }
        }
    }
}

extension JSONValue {
    /// The value as plain text (strings unquoted).
    var text: String {
        switch self {
        case .string(let text): text
        default: (try? JSONColumn.text(self)) ?? ""
        }
    }
}

/// RFC 4180 CSV: fields separated by commas, rows by CRLF or LF, fields in double quotes
/// may hold commas, line breaks and doubled quotes.
enum CSVReader {
    static func parse(_ text: String) throws -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var characters = text.makeIterator()
        var pending: Character?
        while let character = pending ?? characters.next() {
            pending = nil
            if quoted {
                if character == "\"" {
                    let next = characters.next()
                    if next == "\"" {
                        field.append("\"")
                    } else {
                        quoted = false
                        pending = next
                    }
                } else {
                    field.append(character)
                }
                continue
            }
            switch character {
            case "\"" where field.isEmpty: quoted = true
            case ",":
                row.append(field)
                field = ""
            case "\n", "\r\n", "\r":
                row.append(field)
                rows.append(row)
                row = []
                field = ""
            default: field.append(character)
            }
        }
        if quoted { throw ValidationError("the CSV file ends inside a quoted field") }
        if !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return rows
    }

    /// A cell as an input value: plain decimal numbers (no leading zeros, so account numbers
    /// stay text) become numbers, true/false booleans, empty cells nothing.
    static func value(of cell: String) -> JSONValue? {
        if cell.isEmpty { return nil }
        if cell == "true" { return .bool(true) }
        if cell == "false" { return .bool(false) }
        if cell.wholeMatch(of: /-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,10})?/) != nil, let number = Double(cell) { return .number(number) }
        return .string(cell)
    }
}
