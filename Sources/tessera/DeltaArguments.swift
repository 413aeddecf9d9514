import ArgumentParser
import TesseraLibrary

/// How a contributor's update is encoded for submission (train, contribute).
struct DeltaArguments: ParsableArguments {
    @Option(help: "Delta encoding.") var delta = DeltaHeader.Encoding.sparse
    @Option(help: "Sparse deltas: share of entries kept.") var density = 0.25
    @Option(help: "Low-rank deltas: components per tensor.") var rank = 4
    @Option(name: .customLong("factor-bits"), help: "Low-rank deltas: bits per factor value (4 or 8).") var factorBits = 8

    var options: DeltaOptions { DeltaOptions(encoding: delta, density: density, rank: rank, factorBits: factorBits) }

    func validate() throws {
        guard density.isFinite, density > 0, density <= 1 else { throw ValidationError("--density \(density) must be in (0, 1]") }
        if let problem = options.problem { throw ValidationError(problem) }
    }
}

