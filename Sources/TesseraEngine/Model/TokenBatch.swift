import TesseraCore
/// Token ids [batch, seq], row-major: the input of evaluation and training.
public struct TokenBatch: Sendable, Equatable {
    public let batch: Int
    public let seq: Int
    public let ids: [Int32]
    public var count: Int { batch * seq }
    /// Positions that have a next-token label: all but the last of each row.
    public var predictedTokens: Int { batch * max(seq - 1, 0) }

    public init(batch: Int, seq: Int, ids: [Int32]) throws {
        guard batch > 0, seq > 0 else { throw EngineError.invalidInput("token batch shape [\(batch), \(seq)] must be positive") }
        guard ids.count == batch * seq else {
            throw EngineError.invalidInput("token batch has \(ids.count) ids, expected \(batch) × \(seq)")
        }
        self.batch = batch
        self.seq = seq
        self.ids = ids
    }

    /// Reads the int64 tensor `input_ids` [batch, seq] from a safetensors file.
    public static func load(path: String, tensor: String = "input_ids") throws -> TokenBatch {
        try load(file: try SafetensorsFile(path: path), path: path, tensor: tensor)
    }

    /// The same from a file already open (whose metadata the caller also reads).
    public static func load(file: SafetensorsFile, path: String, tensor: String = "input_ids") throws -> TokenBatch {
        guard let info = file.tensors[tensor] else {
            throw SafetensorsError(file: path, "no tensor named \(tensor) (expected int64 \(tensor) [batch, seq])")
        }
        guard info.shape.count == 2 else {
            throw SafetensorsError(file: path, "tensor \(tensor) has shape \(info.shape), expected [batch, seq]")
        }
        guard info.dtype == .i64 || info.dtype == .i32 else {
            throw SafetensorsError(file: path, "tensor \(tensor) has dtype \(info.dtype.rawValue), expected I64")
        }
        let values = try file.int64s(tensor)
        var ids = [Int32]()
        ids.reserveCapacity(values.count)
        for (i, v) in values.enumerated() {
            guard v >= 0, v <= Int64(Int32.max) else {
                throw SafetensorsError(file: path, "tensor \(tensor) holds token id \(v) at position \(i), outside 0...\(Int32.max)")
            }
            ids.append(Int32(v))
        }
        do {
            return try TokenBatch(batch: info.shape[0], seq: info.shape[1], ids: ids)
        } catch {
            throw SafetensorsError(file: path, "tensor \(tensor): \(error)")
        }
    }
}

public enum EngineError: Error, CustomStringConvertible, Sendable {
    case invalidInput(String)
    case checkpoint(String)
    public var description: String {
        switch self {
        case let .invalidInput(s): return s
        case let .checkpoint(s): return s
        }
    }
}
