import ApprovalService
import Foundation
import ServiceKit

let (configuration, logger) = ServiceMain.configure(Approval.name, defaultPort: Approval.defaultPort)
let settings = ServiceMain.settings(Approval.name, ApprovalSettings.init(environment:))
await ServiceMain.run(Approval.name, logger: logger) {
    let app = try Approval.buildApplication(configuration: configuration, settings: settings, metrics: MetricsBootstrap.prometheus(), logger: logger)
    try await app.runService()
}
