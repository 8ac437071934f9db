import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs short commands for the local stack and the tests.
public enum Shell {
    public struct Failure: Error, CustomStringConvertible {
        public let command: String
        public let status: Int32
        public let output: String
        public var description: String { "`\(command)` exited \(status): \(output)" }
    }

    /// Runs `arguments` (the first is looked up on PATH), returning its output; throws on a
    /// non-zero exit. Uses posix_spawn and waitpid: Foundation's `Process` was seen to miss
    /// the exit of `pg_ctl start`, whose daemon child outlives it.
    @discardableResult
    public static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> String {
        // Output goes to a file, not a pipe: a daemon the command starts would inherit the
        // pipe and keep it open, and reading it to the end would never return.
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-shell-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentPairs = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { environmentPairs.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, "/usr/bin/env", &actions, nil, argv, environmentPairs)
        guard spawned == 0 else {
            throw Failure(command: arguments.joined(separator: " "), status: spawned, output: "posix_spawn failed")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        guard exitCode == 0 else {
            throw Failure(command: arguments.joined(separator: " "), status: exitCode, output: output)
        }
        return output
    }

    /// `run` on a thread of its own, for commands that take a while (a browser, a mail
    /// client): the cooperative pool's few threads stay free for the test's servers.
    @discardableResult
    public static func runDetached(_ arguments: [String], environment: [String: String]? = nil) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try run(arguments, environment: environment) })
            }.start()
        }
    }

    /// The directory this program runs from, where the other executables of the package are.
    public static var executableDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// The path of a package executable beside this program (tests run from the same
    /// build directory as the service executables).
    public static func packageExecutable(_ name: String) -> URL {
        var directory = executableDirectory
        // An .xctest bundle on Linux is a file in the build directory; on macOS a folder.
        while directory.pathExtension == "xctest" || directory.lastPathComponent == "MacOS" || directory.lastPathComponent == "Contents" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent(name)
    }
}
