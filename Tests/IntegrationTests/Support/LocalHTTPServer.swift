import DevStack
import Hummingbird
import Logging
import ServiceKitTesting
import ServiceLifecycle

/// A Hummingbird server on a free loopback port, for the stand-ins of outside services
/// (webhook receivers, http task targets, an LLM endpoint).
final class LocalHTTPServer: Sendable {
    let port: Int
    let host: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// - Parameters:
    ///   - host: a loopback address to listen on (127.0.0.2 is another address than the services').
    init(label: String, host: String = "127.0.0.1", port: Int = FreePort.find(), _ routes: (Router<BasicRequestContext>) -> Void) {
        self.port = port
        self.host = host
        let router = Router()
        routes(router)
        let logger = Logger(label: label)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        self.group = group
        task = Task { try await group.run() }
    }

    func url(_ path: String) -> String { "http://\(host):\(port)\(path)" }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
