import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// DeepSeek ESFT's expert affinity on a contributor's data, normalised within each layer,
/// and per layer the smallest set of experts whose cumulative affinity reaches p.
public struct ExpertSelection: Codable, Sendable, Equatable {
    public enum Score: String, Codable, Sendable, CaseIterable {
        /// Average gate value: the routing weight an expert receives per token (0 when not routed).
        case gate
        /// Token-selection ratio: the share of tokens that route to the expert.
        case token
    }

    public static let formatName = "tessera-selection/1"
    public var format: String
    public var score: Score
    public var topP: Double
    public var dataSHA256: String
    public var tokens: Int
    /// [layer][expert], each sparse layer's row summing to 1 (empty rows for dense layers).
    public var affinity: [[Double]]
    public var experts: [ExpertID]

    enum CodingKeys: String, CodingKey {
        case format, score, tokens, affinity, experts
        case topP = "top_p"
        case dataSHA256 = "data_sha256"
    }

    public var trainableFractionOfExperts: Double {
        let total = affinity.reduce(0) { $0 + $1.count }
        return total == 0 ? 0 : Double(experts.count) / Double(total)
    }

    public static func compute(model: MoEModel, data: TokenWindows, score: Score, topP: Double, batch: Int = 8,
                               matmul: MatmulPrecision = .machineDefault) throws -> ExpertSelection {
        guard topP > 0, topP <= 1 else { throw EngineError.invalidInput("--top-p \(topP) must be in (0, 1]") }
        guard data.count > 0 else { throw EngineError.invalidInput("\(data.origin): no windows") }
        let c = model.config
        var counts = [[Double]](repeating: [Double](repeating: 0, count: c.experts), count: c.layers)
        var mass = counts
        try data.forEachBatch(model: model, batch: batch, matmul: matmul) { run, _ in
            let s = run.routerStats
            for l in 0..<c.layers where c.sparseLayers[l] {
                for e in 0..<c.experts {
                    counts[l][e] += Double(s.counts[l][e])
                    mass[l][e] += s.gateMass[l][e]
                }
            }
        }
        var affinity: [[Double]] = []
        var chosen: [ExpertID] = []
        for l in 0..<c.layers {
            guard c.sparseLayers[l] else { affinity.append([]); continue }
            let raw = score == .token ? counts[l] : mass[l]
            let total = raw.reduce(0, +)
            let row = raw.map { total > 0 ? $0 / total : 1 / Double(c.experts) }
            affinity.append(row)
            // Highest affinity first, ties to the lower index, until the prefix reaches p.
            var cumulative = 0.0
            for e in row.indices.sorted(by: { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }) {
                chosen.append(ExpertID(layer: l, expert: e))
                cumulative += row[e]
                if cumulative >= topP - 1e-12 { break }
            }
        }
        return ExpertSelection(format: formatName, score: score, topP: topP, dataSHA256: data.contentHash,
                               tokens: data.count * data.seq, affinity: affinity, experts: chosen.sorted())
    }

    public static func load(_ path: String) throws -> ExpertSelection {
        guard let data = FileManager.default.contents(atPath: path) else { throw LibraryError("\(path): cannot read") }
        let s: ExpertSelection
        do { s = try StrictJSON.decode(ExpertSelection.self, from: data, file: path) } catch {
            throw LibraryError("\(path): not a selection file (\(error))")
        }
        guard s.format == formatName else { throw LibraryError("\(path): format is not \(formatName)") }
        guard !s.experts.isEmpty else { throw LibraryError("\(path): selects no experts") }
        return s
    }

    public func save(_ path: String) throws { try AtomicFile.write(try JSONOutput.pretty(self), to: path) }

    /// The table `tessera select` prints: affinity in percent, selected experts starred.
    public var table: String {
        let width = affinity.map(\.count).max() ?? 0
        var out = "layer " + (0..<width).map { String(repeating: " ", count: max(0, 6 - "e\($0)".count)) + "e\($0) " }.joined() + "\n"
        let chosen = Set(experts)
        for (l, row) in affinity.enumerated() where !row.isEmpty {
            out += String(format: "%5d ", l)
            for (e, a) in row.enumerated() {
                out += String(format: "%6.1f", a * 100) + (chosen.contains(ExpertID(layer: l, expert: e)) ? "*" : " ")
            }
            out += "\n"
        }
        out += "\(experts.count) of \(affinity.reduce(0) { $0 + $1.count }) experts selected ("
            + String(format: "%.1f%%", trainableFractionOfExperts * 100) + "), \(score.rawValue) score, p = \(topP)"
        return out
    }
}
