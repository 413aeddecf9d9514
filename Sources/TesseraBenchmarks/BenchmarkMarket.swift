import Foundation
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraMarket

/// A fresh market around `model` for the load benchmarks: the model saved in bf16, split
/// into a library, and a market created on it under `root`/market (the checkpoint and the
/// library's source copy are removed once the market holds them).
func benchmarkMarket(_ model: MoEModel, root: String, policy: String, operatorKey: ParticipantKey,
                     database: String? = nil) throws -> LocalMarket {
    let fm = FileManager.default
    try model.save(directory: root + "/hf", dtype: .bf16)
    _ = try ExpertLibrary.split(checkpoint: root + "/hf", into: root + "/lib")
    try? fm.removeItem(atPath: root + "/hf")
    let market = root + "/market"
    _ = try MarketDirectory.create(at: market, policyFolder: policy, library: root + "/lib", operatorKey: operatorKey,
                                   publisher: ParticipantKey.generate().publicHex, at: Int64(Date().timeIntervalSince1970),
                                   database: database)
    try? fm.removeItem(atPath: root + "/lib")
    return try LocalMarket(directory: MarketDirectory(path: market))
}
