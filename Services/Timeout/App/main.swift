import ServiceKit
import TimeoutService

let (configuration, logger) = ServiceMain.configure(Timeout.name, defaultPort: Timeout.defaultPort)
let settings = ServiceMain.settings(Timeout.name, TimeoutSettings.init(environment:))
await ServiceMain.run(Timeout.name, logger: logger) {
    let app = try Timeout.buildApplication(configuration: configuration, settings: settings, metrics: MetricsBootstrap.prometheus(), logger: logger)
    try await app.runService()
}
