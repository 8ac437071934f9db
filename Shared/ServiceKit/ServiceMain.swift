import Foundation
import Logging
import NIOCore
import NIOPosix

/// What every `@main` does first: run Swift concurrency on NIO's event loops, read the
/// configuration from the environment it is handed and set up logging. A bad setting ends
/// the process with a message that names the variable (exit code 78, EX_CONFIG).
public enum ServiceMain {
    public static func configure(_ service: String, defaultPort: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> (
        ServiceConfiguration, Logger
    ) {
        // Swift concurrency runs on NIO's event loops, the threads that also serve HTTP,
        // Postgres and the HTTP client: an await on I/O then resumes without a hop between
        // two thread pools (15 % less CPU in the services, `hitl bench`). Nothing may block on
        // those threads; the blocking librdkafka calls run on threads of their own.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        do {
            let configuration = try ServiceConfiguration(service: service, defaultPort: defaultPort, environment: EnvironmentReader(environment))
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
                return handler
            }
            var logger = Logger(label: "hitl.\(service)")
            logger[metadataKey: "service"] = "\(service)"
            boundShutdown(within: configuration.shutdownTimeoutSeconds, logger: logger)
            if environment["HITL_EXIT_WITH_PARENT"] == "1" { exitWithParent(logger: logger) }
            return (configuration, logger)
        } catch {
            FileHandle.standardError.write(Data("hitl-\(service): \(error)\n".utf8))
            exit(78)
        }
    }

    /// Graceful shutdown (the `ServiceGroup`: stop taking work, finish what is in flight,
    /// flush the producer) gets `seconds` from the first SIGTERM or SIGINT; then the process
    /// ends anyway with exit code 1, whatever still waits (a dependency that is gone, a
    /// call that never answers). What was not done stays in Postgres for the next start.
    static func boundShutdown(within seconds: Int, logger: Logger) {
        ShutdownDeadline.shared.arm(seconds: seconds, logger: logger)
    }

    /// For child processes of `hitl dev` and the tests (`HITL_EXIT_WITH_PARENT=1`): once the
    /// parent is gone (this process was handed to another), shut down gracefully as on
    /// SIGTERM, so a killed test run or dev stack leaves no services behind.
    static func exitWithParent(logger: Logger) {
        let parent = getppid()
        let watcher = Thread {
            while getppid() == parent { sleep(1) }
            logger.warning("Parent process gone; shutting down")
            kill(getpid(), SIGTERM)
        }
        watcher.name = "hitl-parent-watch"
        watcher.start()
    }

    /// Runs the service until it ends. An error that ends it (a migration that fails, a
    /// port in use) is logged and ends the process with exit code 1: a message, not a
    /// crash report that takes a minute to symbolicate while the process lingers.
    public static func run(_ service: String, logger: Logger, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch {
            logger.critical("Stopped by an error", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
            FileHandle.standardError.write(Data("hitl-\(service): stopped: \(ErrorText.describe(error))\n".utf8))
            exit(1)
        }
    }

    /// Reads a service's own settings, ending the process the same way on a bad one.
    public static func settings<Settings>(
        _ service: String, environment: [String: String] = ProcessInfo.processInfo.environment, _ read: (EnvironmentReader) throws -> Settings
    ) -> Settings {
        do {
            return try read(EnvironmentReader(environment))
        } catch {
            FileHandle.standardError.write(Data("hitl-\(service): \(error)\n".utf8))
            exit(78)
        }
    }
}

/// The signal sources behind `ServiceMain.boundShutdown`, kept for the process's life. Only
/// touched on its own serial queue.
private final class ShutdownDeadline: @unchecked Sendable {
    static let shared = ShutdownDeadline()
    private let queue = DispatchQueue(label: "hitl-shutdown-deadline")
    private var sources: [any DispatchSourceSignal] = []
    private var started = false

    func arm(seconds: Int, logger: Logger) {
        queue.sync {
            for signal in [SIGTERM, SIGINT] {
                let source = DispatchSource.makeSignalSource(signal: signal, queue: queue)
                source.setEventHandler { [unowned self] in self.start(seconds: seconds, logger: logger) }
                source.resume()
                sources.append(source)
            }
        }
    }

    /// On the queue: the first signal starts the countdown.
    private func start(seconds: Int, logger: Logger) {
        guard !started else { return }
        started = true
        queue.asyncAfter(deadline: .now() + .seconds(seconds)) {
            logger.error("Shutdown did not finish in time; exiting", metadata: ["shutdown.timeout_seconds": "\(seconds)"])
            exit(1)
        }
    }
}
