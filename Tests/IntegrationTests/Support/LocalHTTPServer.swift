import Hummingbird
import Logging
import ServiceKitTesting
import ServiceLifecycle

/// A Hummingbird server on a free loopback port, for the stand-ins of outside services
/// (webhook receivers, http task targets, an LLM endpoint).
final class LocalHTTPServer: Sendable {
    let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(label: String, port: Int = FreePort.find(), _ routes: (Router<BasicRequestContext>) -> Void) {
        self.port = port
        let router = Router()
        routes(router)
        let logger = Logger(label: label)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        self.group = group
        task = Task { try await group.run() }
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
