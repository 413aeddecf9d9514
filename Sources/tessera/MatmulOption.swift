import ArgumentParser
import TesseraCore
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraProof

extension MatmulPrecision: ExpressibleByArgument {}
extension ExpertSelection.Score: ExpressibleByArgument {}
extension DeltaHeader.Encoding: ExpressibleByArgument {}
extension Role: ExpressibleByArgument {}

/// `--roles contributor,validator`: a comma-separated list of roles.
struct RoleList: ExpressibleByArgument {
    var roles: [Role]
    init?(argument: String) {
        var out: [Role] = []
        for part in argument.split(separator: ",") {
            guard let r = Role(rawValue: part.trimmingCharacters(in: .whitespaces)) else { return nil }
            out.append(r)
        }
        guard !out.isEmpty else { return nil }
        roles = out
    }
    static var allValueStrings: [String] { Role.allCases.map(\.rawValue) }
}

/// `--matmul`, taken by every command that runs a model. The choice is passed to the
/// runs explicitly; nothing process-wide changes.
struct MatmulOption: ParsableArguments {
    @Option(name: .customLong("matmul"),
            help: "Matrix products: fp32 (OpenBLAS), bf16x3 or bf16x6 (AMX split-bf16; bf16x6 carries float's full precision). Default: TESSERA_MATMUL, else bf16x3 where AMX exists, else fp32.")
    var choice: MatmulPrecision?

    func validate() throws {
        if let choice {
            _ = try MatmulPrecision.parse(choice.rawValue)
        } else {
            _ = try MatmulPrecision.fromEnvironment()
        }
    }

    /// The precision chosen, or the machine's default.
    var precision: MatmulPrecision { choice ?? .machineDefault }
}

import Foundation

/// A count on the command line: 1 or more (a negative count used to reach a trap).
struct Count: ExpressibleByArgument, Sendable {
    let value: Int
    init(_ value: Int) { self.value = value }
    init?(argument: String) {
        guard let v = Int(argument), v > 0 else { return nil }
        value = v
    }
    var defaultValueDescription: String { String(value) }
}
