import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import ServiceKit

/// Sends one message over SMTP (RFC 5321): greeting, EHLO, STARTTLS (RFC 3207) and EHLO
/// again over TLS, AUTH PLAIN (RFC 4954), MAIL FROM, RCPT TO, DATA, QUIT. TLS is required
/// unless the settings say otherwise, and the server's certificate is verified (against
/// `caFile` when given, the system's roots otherwise). Credentials are never sent in clear.
struct SMTPClient: Sendable {
    struct Settings: Sendable {
        var host: String
        var port: Int
        var username: String?
        var password: String?
        /// `false` only for a relay on a trusted network: no STARTTLS, and so no AUTH.
        var startTLS = true
        var caFile: String?
        var timeout: TimeAmount = .seconds(30)
    }

    /// The server refused a command; `permanent` for 5xx answers (retrying will not help).
    struct Refusal: Error, CustomStringConvertible {
        let command: String
        let reply: SMTPReply
        var permanent: Bool { reply.code >= 500 }
        var description: String { "SMTP \(command) refused: \(reply.code) \(reply.lines.joined(separator: " "))" }
    }

    let settings: Settings
    /// The SMTP host is reached only where the egress policy allows, at the address checked.
    let egress: EgressClient

    func send(from: String, to recipients: [String], message: String) async throws {
        let addresses = try await egress.policy.addresses(for: settings.host, resolver: SystemResolver())
        let address = addresses.first(where: \.isIPv4) ?? addresses[0]
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(settings.timeout)
            .connect(host: address.description, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                    return try NIOAsyncChannel<SMTPReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let timeout = settings.timeout
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                channel.channel.close(promise: nil)
                throw SMTPProtocolError("the server did not answer within \(timeout.nanoseconds / 1_000_000_000) s")
            }
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    var session = Session(replies: inbound.makeAsyncIterator(), outbound: outbound)
                    try await session.expect(220, after: "connect")
                    var features = try await session.command("EHLO \(Self.hostName)", expect: 250)
                    if settings.startTLS {
                        guard features.lines.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) else {
                            throw SMTPProtocolError("the server does not offer STARTTLS, and TLS is required")
                        }
                        _ = try await session.command("STARTTLS", expect: 220)
                        try await startTLS(on: channel.channel)
                        features = try await session.command("EHLO \(Self.hostName)", expect: 250)
                    }
                    if let username = settings.username, let password = settings.password {
                        guard settings.startTLS else { throw SMTPProtocolError("AUTH needs TLS (HITL_SMTP_TLS=starttls)") }
                        let credentials = Data("\0\(username)\0\(password)".utf8).base64EncodedString()
                        _ = try await session.command("AUTH PLAIN \(credentials)", expect: 235, shownAs: "AUTH PLAIN")
                    }
                    _ = try await session.command("MAIL FROM:<\(from)>", expect: 250)
                    for recipient in recipients {
                        _ = try await session.command("RCPT TO:<\(recipient)>", expect: 250, 251)
                    }
                    _ = try await session.command("DATA", expect: 354)
                    _ = try await session.command(Self.dotStuffed(message) + "\r\n.", expect: 250, shownAs: "message")
                    _ = try? await session.command("QUIT", expect: 221)
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    private func startTLS(on channel: any Channel) async throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = settings.caFile { configuration.trustRoots = .file(caFile) }
        let context = try NIOSSLContext(configuration: configuration)
        let hostname = settings.host.first?.isNumber == true ? nil : settings.host
        // The handler goes in front of the reply decoder: everything after STARTTLS is TLS.
        try await channel.eventLoop.submit {
            let handler = try NIOSSLClientHandler(context: context, serverHostname: hostname)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
    }

    /// Lines that start with a dot get another (RFC 5321 §4.5.2); line ends become CRLF.
    static func dotStuffed(_ message: String) -> String {
        message.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(".") ? "." + $0 : String($0) }.joined(separator: "\r\n")
    }

    static var hostName: String {
        let name = ProcessInfo.processInfo.hostName
        return name.isEmpty || name.contains(" ") ? "localhost" : name
    }

    /// One conversation: a command, then its reply.
    private struct Session {
        var replies: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator
        let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

        mutating func command(_ line: String, expect codes: Int..., shownAs name: String? = nil) async throws -> SMTPReply {
            try await outbound.write(ByteBuffer(string: line + "\r\n"))
            return try await expect(codes, after: name ?? line)
        }

        mutating func expect(_ code: Int, after command: String) async throws {
            _ = try await expect([code], after: command)
        }

        mutating func expect(_ codes: [Int], after command: String) async throws -> SMTPReply {
            guard let reply = try await replies.next() else { throw SMTPProtocolError("the server closed the connection after \(command)") }
            guard codes.contains(reply.code) else { throw Refusal(command: command, reply: reply) }
            return reply
        }
    }
}

/// A server reply: its code and the text of each line (`250-…` continues, `250 …` ends).
struct SMTPReply: Sendable {
    let code: Int
    let lines: [String]
}

struct SMTPProtocolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Splits the server's bytes into replies.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply
    private var lines: [String] = []

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 4096 { throw SMTPProtocolError("a reply line is longer than 4096 bytes") }
            return .needMoreData
        }
        let length = newline - view.startIndex + 1
        guard var line = buffer.readString(length: length) else { return .needMoreData }
        line = line.trimmingCharacters(in: .newlines)
        let characters = Array(line)
        guard characters.count >= 3, let code = Int(String(characters[0..<3])) else { throw SMTPProtocolError("not an SMTP reply: \(line)") }
        lines.append(characters.count > 4 ? String(characters[4...]) : "")
        if characters.count > 3, characters[3] == "-" { return .continue }
        context.fireChannelRead(wrapInboundOut(SMTPReply(code: code, lines: lines)))
        lines = []
        return .continue
    }
}
