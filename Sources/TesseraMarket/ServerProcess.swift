import Foundation
import TesseraCore
#if canImport(Glibc)
import Glibc
#endif

/// `tessera serve` as a child process: started on a market directory, known by the URL it
/// prints once it listens, stopped with SIGTERM or killed with SIGKILL. The network demo
/// runs its server this way, and the fault tests kill one at a crash point and start
/// another on the same directory and port.
public final class ServerProcess: @unchecked Sendable {
    public let url: String
    public let port: Int
    /// Where the server's standard error (its request log) goes.
    public let logPath: String
    let process: Process

    /// Starts the server and returns once it listens. `port` 0 lets the system choose;
    /// `environment` adds to this process's (TESSERA_CRASH_AT, for instance); `arguments`
    /// go to `tessera serve` after the market, port and log level.
    public static func start(binary: String, market: String, port: Int = 0, logPath: String, logLevel: String = "warning",
                             arguments: [String] = [], environment: [String: String] = [:], timeout: Double = 60) async throws -> ServerProcess {
        try await Blocking.run {
            try ServerProcess(binary: binary, arguments: ["serve", "--market", market, "--port", String(port), "--log-level", logLevel] + arguments,
                              logPath: logPath, environment: environment, timeout: timeout)
        }
    }

    private init(binary: String, arguments: [String], logPath: String, environment: [String: String], timeout: Double) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try p.run()
        process = p
        self.logPath = logPath
        // The first line is "serving DIR on http://HOST:PORT".
        var text = ""
        let deadline = Date().addingTimeInterval(timeout)
        while !text.contains("\n") {
            let chunk = pipe.fileHandleForReading.availableData
            guard !chunk.isEmpty, Date() < deadline else {
                if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
                throw CoreError("the market server did not start listening; see \(logPath): \(Self.tail(logPath))")
            }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: "http://") else { throw CoreError("the market server said \(text)") }
        url = String(text[range.lowerBound...].prefix { !$0.isWhitespace })
        self.port = Int(url.split(separator: ":").last ?? "") ?? 0
    }

    public var isRunning: Bool { process.isRunning }
    public var pid: Int32 { process.processIdentifier }

    /// The server's resident memory in bytes (Linux: VmRSS in /proc/PID/status), nil if unknown.
    public var residentBytes: Int? { ProcessMemory.resident(pid: pid) }

    /// Stops the server the way an operator would (SIGTERM: in-flight requests finish).
    public func stop() async { await signal(SIGTERM) }

    /// Kills the server outright, as a power cut would.
    public func kill9() async { await signal(SIGKILL) }

    func signal(_ s: Int32) async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, s)
        let p = process
        _ = try? await Blocking.run { p.waitUntilExit() }
    }

    /// Waits until the server's log holds `text` (a crash point's line, say); false on timeout.
    public func waitForLog(_ text: String, timeout: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if Self.tail(logPath, bytes: 1 << 20).contains(text) { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return false
    }

    static func tail(_ path: String, bytes: Int = 600) -> String {
        guard let d = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: d.suffix(bytes), as: UTF8.self)
    }
}
