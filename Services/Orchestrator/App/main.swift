import Foundation
import OrchestratorService
import ServiceKit

let (configuration, logger) = ServiceMain.configure(Orchestrator.name, defaultPort: Orchestrator.defaultPort)
let app = try Orchestrator.buildApplication(configuration: configuration, metrics: MetricsBootstrap.prometheus(), logger: logger)
try await app.runService()
