import NotifierService
import ServiceKit

let (configuration, logger) = ServiceMain.configure(Notifier.name, defaultPort: Notifier.defaultPort)
let settings = ServiceMain.settings(Notifier.name, NotifierSettings.init(environment:))
await ServiceMain.run(Notifier.name, logger: logger) {
    let app = try Notifier.buildApplication(configuration: configuration, settings: settings, metrics: MetricsBootstrap.prometheus(), logger: logger)
    try await app.runService()
}
