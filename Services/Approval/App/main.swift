import ApprovalService
import Foundation
import ServiceKit

let (configuration, logger) = ServiceMain.configure(Approval.name, defaultPort: Approval.defaultPort)
let settings = ServiceMain.settings(Approval.name, ApprovalSettings.init(environment:))
let app = try Approval.buildApplication(configuration: configuration, settings: settings, metrics: MetricsBootstrap.prometheus(), logger: logger)
try await app.runService()
