import AsyncHTTPClient
import Foundation

/// One service executable (or a helper server) running as a child process, its output appended to a log file.
public final class ServiceProcess: @unchecked Sendable {
    // Mutated only by start/stop/kill, which callers do not run concurrently.
    public let name: String
    public let executable: URL
    public let environment: [String: String]
    public let logFile: URL
    public let baseURL: String
    /// Command-line arguments (the services take none; helper servers do).
    public var arguments: [String] = []
    private var process: Process?

    public init(name: String, executable: URL, environment: [String: String], logFile: URL, baseURL: String) {
        self.name = name
        self.executable = executable
        self.environment = environment
        self.logFile = logFile
        self.baseURL = baseURL
    }

    public var pid: Int32? { process?.processIdentifier }
    public var isRunning: Bool { process?.isRunning ?? false }
    /// The exit status once the process has ended.
    public var exitStatus: Int32? {
        guard let process, !process.isRunning else { return nil }
        return process.terminationStatus
    }

    /// Starts the process (again, after a stop or kill).
    public func start() throws {
        if !FileManager.default.fileExists(atPath: logFile.path) {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        }
        let log = try FileHandle(forWritingTo: logFile)
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = executable
        process.environment = environment
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
    }

    /// Waits until `/health/ready` answers 200.
    public func waitUntilReady(timeout: Duration = .seconds(90)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard isRunning else { throw StackError("\(name) exited while starting; see \(logFile.path)") }
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "\(baseURL)/health/ready"), timeout: .seconds(2)),
                response.status.code == 200
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw StackError("\(name) was not ready after \(timeout); see \(logFile.path)")
    }

    /// SIGTERM, then waits for a graceful exit (SIGKILL after `timeout`).
    public func stop(timeout: Duration = .seconds(20)) async {
        guard let process, process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        Self.awaitExit(process)
    }

    /// `kill -9`: no chance to flush, commit or say goodbye.
    public func kill9() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        Self.awaitExit(process)
    }

    /// Waits (at most ten seconds) for the process to be reaped. Foundation's
    /// `waitUntilExit` was seen to miss exits, so this polls `isRunning` instead.
    private static func awaitExit(_ process: Process) {
        for _ in 0..<1000 where process.isRunning {
            usleep(10_000)
        }
    }

    /// Peak resident memory in KiB (`VmHWM`), from /proc.
    public func peakRSSKiB() -> Int? {
        pid.flatMap(Self.peakRSSKiB(pid:))
    }

    /// Peak resident memory of any process in KiB (`VmHWM`), from /proc.
    public static func peakRSSKiB(pid: Int32) -> Int? {
        memoryKiB(pid: pid, field: "VmHWM")
    }

    /// Resident memory of any process now, in KiB (`VmRSS`).
    public static func currentRSSKiB(pid: Int32) -> Int? {
        memoryKiB(pid: pid, field: "VmRSS")
    }

    /// CPU time (user and system) a process has used so far, in seconds, from /proc.
    public static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let end = stat.lastIndex(of: ")") else { return nil }
        // After the command in parentheses: utime and stime are the 12th and 13th fields.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// CPU time every process of the machine has used so far (user, nice, system, interrupts;
    /// not idle, I/O wait or time stolen by a hypervisor), in seconds, from /proc/stat.
    public static func machineCPUSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = stat.split(separator: "\n").first else { return nil }
        let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard ticks.count >= 7 else { return nil }
        return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private static func memoryKiB(pid: Int32, field: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("\(field):") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }
}

/// Why the local stack could not do what was asked.
public struct StackError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
