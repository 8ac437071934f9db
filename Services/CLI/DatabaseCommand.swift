import ArgumentParser
import DevStack
import Foundation
import Logging
import ServiceKit

/// `hitl db init`: provisions the service roles and schemas (the compose init job runs it).
struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Database administration.", subcommands: [Initialize.self])

    struct Initialize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create the database (if missing), one role and one schema per service; safe to run again.")

        @Option(help: "Administrator URL, postgres://user:password@host:port/any-database (default: HITL_ADMIN_DATABASE_URL).")
        var adminURL: String?
        @Option(help: "The database to provision.") var database = "hitl"
        @Option(help: "Password of the service roles that have none of their own (default: HITL_ROLE_PASSWORD).")
        var rolePassword: String?

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            guard let adminURL = adminURL ?? environment["HITL_ADMIN_DATABASE_URL"] else {
                throw ValidationError("pass --admin-url or set HITL_ADMIN_DATABASE_URL")
            }
            // One password per role (HITL_ROLE_PASSWORD_ORCHESTRATOR, …), or the shared one.
            var passwords: [String: String] = [:]
            for service in Provisioning.services {
                let own = "HITL_ROLE_PASSWORD_\(service.uppercased())"
                guard let password = environment[own] ?? rolePassword ?? environment["HITL_ROLE_PASSWORD"], password.count >= 8 else {
                    throw ValidationError("set \(own), or pass --role-password or HITL_ROLE_PASSWORD (8 characters at least)")
                }
                passwords[service] = password
            }
            let admin = try DatabaseConfiguration(url: adminURL, variable: "--admin-url", schema: "public")
            try await StackDatabase.create(database, admin: admin, rolePasswords: passwords)
            print("Provisioned \(database): roles \(Provisioning.services.map(Provisioning.role(of:)).joined(separator: ", "))")
        }
    }
}
