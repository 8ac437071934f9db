import Foundation

/// A private Postgres server (Debian's binaries) in its own data directory on a free
/// loopback port, with `trust` authentication on loopback only. Used by `hitl dev` and by
/// tests that are not given a server. Started as the `postgres` user when run as root,
/// since Postgres refuses to run as root.
///
/// The server is a daemon, so a run that was killed outright leaves it running. The pid of
/// the process that started it is kept in `owner.pid`; the next start in the same directory
/// stops such a leftover first, and refuses while its owner still runs.
public final class LocalPostgres: Sendable {
    public let directory: URL
    public let port: Int
    public let adminUser = "hitl_admin"
    private let binDirectory: String
    private let runAs: [String]
    /// With TLS: the server's self-signed certificate (for `localhost` and 127.0.0.1), which
    /// is also the CA a client checks it with.
    public let certificate: URL?

    /// The administrator URL for `database`.
    public func url(database: String = "postgres", user: String? = nil, password: String? = nil) -> String {
        let credentials = password.map { "\(user ?? adminUser):\($0)" } ?? (user ?? adminUser)
        return "postgres://\(credentials)@127.0.0.1:\(port)/\(database)"
    }

    /// Initialises (once) and starts a server in `directory`; with `tls`, it also takes TLS
    /// connections, with a certificate made for it.
    public init(directory: URL, port: Int = FreePort.find(), tls: Bool = false) throws {
        self.directory = directory
        self.port = port
        binDirectory = try Self.findBinDirectory()
        runAs = getuid() == 0 ? ["runuser", "-u", "postgres", "--"] : []
        let data = directory.appendingPathComponent("data").path
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        certificate = tls ? directory.appendingPathComponent("server.crt") : nil
        if tls {
            try Shell.run([
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", directory.appendingPathComponent("server.key").path,
                "-out", directory.appendingPathComponent("server.crt").path,
            ])
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory.appendingPathComponent("server.key").path)
        }
        if getuid() == 0 { try Shell.run(["chown", "-R", "postgres:postgres", directory.path]) }
        if !FileManager.default.fileExists(atPath: data + "/PG_VERSION") {
            try Shell.run(runAs + ["\(binDirectory)/initdb", "-D", data, "-U", adminUser, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        }
        try stopLeftover(data: data)
        try startServer()
        try Data("\(getpid())\n".utf8).write(to: ownerFile)
    }

    private var ownerFile: URL { directory.appendingPathComponent("owner.pid") }

    /// Stops a server still running in `data` whose owner is gone.
    private func stopLeftover(data: String) throws {
        // `pg_ctl status` fails when no server runs in `data`.
        guard (try? Shell.run(runAs + ["\(binDirectory)/pg_ctl", "-D", data, "status"])) != nil else { return }
        let owner = (try? String(contentsOf: ownerFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        if let owner, owner != getpid(), Self.isRunning(owner) {
            throw Shell.Failure(
                command: "start Postgres in \(directory.path)", status: 1,
                output: "its server is in use by process \(owner); stop that first, or use another directory")
        }
        try Shell.run(runAs + ["\(binDirectory)/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"])
    }

    /// Starts the server in its data directory (after `stopImmediately`).
    public func startServer() throws {
        try Shell.run(
            runAs + [
                "\(binDirectory)/pg_ctl", "-D", directory.appendingPathComponent("data").path, "-l", directory.appendingPathComponent("postgres.log").path,
                "-w", "-t", "60",
                "-o",
                "-p \(port) -k \(directory.path) -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c shared_buffers=256MB"
                    + (certificate == nil ? "" : " -c ssl=on -c ssl_cert_file=\(directory.path)/server.crt -c ssl_key_file=\(directory.path)/server.key"),
                "start",
            ])
    }

    /// Stops the server as a crash would: sessions are cut without a goodbye.
    public func stopImmediately() throws {
        try Shell.run(runAs + ["\(binDirectory)/pg_ctl", "-D", directory.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"])
    }

    /// Restarts the server as a crash or a failover would (`immediate`: sessions are cut
    /// without a goodbye), back within a second or two.
    public func restartImmediately() throws {
        try Shell.run(
            runAs + [
                "\(binDirectory)/pg_ctl", "-D", directory.appendingPathComponent("data").path, "-m", "immediate", "-w", "-t", "60",
                "-l", directory.appendingPathComponent("postgres.log").path, "restart",
            ])
    }

    /// Stops the server (fast shutdown: open sessions are ended).
    public func stop() {
        _ = try? Shell.run(runAs + ["\(binDirectory)/pg_ctl", "-D", directory.appendingPathComponent("data").path, "-m", "fast", "-w", "stop"])
    }

    /// Whether `pid` is a live process of ours (its pid could have been reused since).
    private static func isRunning(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let command = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return true }
        return String(decoding: command, as: UTF8.self).contains("hitl")
    }

    private static func findBinDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard let newest = versions.compactMap(Int.init).max() else {
            throw Shell.Failure(command: "find Postgres", status: 1, output: "no server under \(root); install Debian's postgresql package")
        }
        return "\(root)/\(newest)/bin"
    }
}
