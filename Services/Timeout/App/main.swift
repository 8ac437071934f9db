import ServiceKit
import TimeoutService

let (configuration, logger) = ServiceMain.configure(Timeout.name, defaultPort: Timeout.defaultPort)
let app = try Timeout.buildApplication(configuration: configuration, metrics: MetricsBootstrap.prometheus(), logger: logger)
try await app.runService()
