import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs the `tessera` binary and kills it with SIGKILL at a named crash point
/// (`TESSERA_CRASH_AT`, see `CrashPoint`): the test waits for the process to announce
/// that it stopped there, so the kill lands at the same place on a loaded machine as on
/// an idle one.
public enum CrashRun {
    public enum Outcome: Equatable, Sendable {
        /// Stopped at the crash point and killed there.
        case killed
        /// Finished without reaching the crash point.
        case exited(Int32)
    }

    /// Runs `arguments`; with `crashAt` (`NAME` or `NAME#N`), kills the process when it
    /// reaches that point. Standard error is returned with the outcome.
    public static func run(_ arguments: [String], crashAt: String? = nil, binary: String = ReferenceFixtures.binary) throws -> (outcome: Outcome, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        if let crashAt { env["TESSERA_CRASH_AT"] = crashAt } else { env.removeValue(forKey: "TESSERA_CRASH_AT") }
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        let errPipe = Pipe()
        p.standardError = errPipe
        try p.run()
        var text = ""
        let reader = errPipe.fileHandleForReading
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if crashAt != nil, text.contains("crashpoint ") {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                return (.killed, text)
            }
        }
        p.waitUntilExit()
        return (.exited(p.terminationStatus), text)
    }
}
