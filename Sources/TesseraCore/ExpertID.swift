/// A routed expert: its layer and its index within the layer.
public struct ExpertID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var layer: Int
    public var expert: Int
    public init(layer: Int, expert: Int) { self.layer = layer; self.expert = expert }
    public static func < (a: ExpertID, b: ExpertID) -> Bool { (a.layer, a.expert) < (b.layer, b.expert) }
    public var description: String { "\(layer):\(expert)" }

    /// "LAYER:EXPERT", both non-negative decimal integers.
    public init(parsing text: some StringProtocol) throws {
        let parts = String(text).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let l = Self.index(parts[0]), let e = Self.index(parts[1]) else {
            throw CoreError("expert \"\(text)\" is not of the form LAYER:EXPERT (two non-negative integers of at most 9 digits)")
        }
        self.init(layer: l, expert: e)
    }

    /// "L:E,L:E,…" as the command line takes expert lists, in the order given.
    public static func parseList(_ text: String) throws -> [ExpertID] {
        try text.split(separator: ",").map { try ExpertID(parsing: $0.trimmingCharacters(in: .whitespaces)) }
    }

    private static func index(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.count <= 9, s.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int(s)
    }
}

import Foundation
