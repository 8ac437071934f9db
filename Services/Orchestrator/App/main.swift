import Foundation
import OrchestratorService
import ServiceKit

let (configuration, logger) = ServiceMain.configure(Orchestrator.name, defaultPort: Orchestrator.defaultPort)
let settings = ServiceMain.settings(Orchestrator.name, OrchestratorSettings.init(environment:))
await ServiceMain.run(Orchestrator.name, logger: logger) {
    let app = try Orchestrator.buildApplication(configuration: configuration, settings: settings, metrics: MetricsBootstrap.prometheus(), logger: logger)
    try await app.runService()
}
