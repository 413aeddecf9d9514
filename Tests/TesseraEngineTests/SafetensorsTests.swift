import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

@Suite struct SafetensorsTests {
    /// A file from a header object and a data buffer, bypassing the writer's checks.
    static func rawFile(_ header: String, data: [UInt8], in dir: TemporaryDirectory, name: String = "t.safetensors") -> String {
        var bytes = [UInt8]()
        let h = Array(header.utf8)
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { bytes += $0 }
        bytes += h + data
        let path = dir.sub(name)
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    static func expectError(_ path: String, contains fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try SafetensorsFile(path: path)
            Issue.record("expected an error containing \"\(fragment)\"", sourceLocation: sourceLocation)
        } catch let e as SafetensorsError {
            #expect(e.file == path, sourceLocation: sourceLocation)
            #expect(e.problem.contains(fragment), "\(e.problem)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func roundTripsEveryDtype() throws {
        let dir = TemporaryDirectory()
        let values: [Float] = [0, 1.5, -2.25, 3.140625, 1e-3, -7]
        let records = [
            TensorRecord(name: "a.f32", shape: [2, 3], floats: values),
            TensorRecord(name: "b.bf16", shape: [6], floats: values, as: .bf16),
            TensorRecord(name: "c.f16", shape: [3, 2], floats: values, as: .f16),
            TensorRecord(name: "d.ids", shape: [2, 2], int64s: [0, 5, -3, 1 << 40]),
            TensorRecord(name: "e.empty", shape: [0, 4], floats: []),
        ]
        let path = dir.sub("x.safetensors")
        try SafetensorsWriter.write(records, metadata: ["format": "pt", "who": "test"], to: path)
        let f = try SafetensorsFile(path: path)
        #expect(f.metadata == ["format": "pt", "who": "test"])
        #expect(try f.floats("a.f32") == values)
        #expect(try f.floats("b.bf16") == values.map { floatFromBF16(bf16Bits($0)) })
        #expect(try f.floats("c.f16") == values.map { Float(Float16($0)) })
        #expect(try f.int64s("d.ids") == [0, 5, -3, 1 << 40])
        #expect(f.tensors["e.empty"]?.shape == [0, 4])
        // Header padded to 8 bytes with spaces, as the reference writer does.
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = raw.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(n % 8 == 0)
    }

    @Test func rejectsTruncatedFiles() throws {
        let dir = TemporaryDirectory()
        let path = dir.sub("ok.safetensors")
        try SafetensorsWriter.write([TensorRecord(name: "w", shape: [4, 4], floats: Array(repeating: 1, count: 16))], to: path)
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        for cut in [0, 5, 8, 20, full.count - 1] {
            let p = dir.sub("cut\(cut).safetensors")
            FileManager.default.createFile(atPath: p, contents: full.prefix(cut))
            Self.expectError(p, contains: "truncated")
        }
    }

    @Test func rejectsInconsistentHeaders() {
        let dir = TemporaryDirectory()
        let eight = [UInt8](repeating: 0, count: 8)
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight, in: dir, name: "1"),
                         contains: "needs 12 bytes")
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight, in: dir, name: "2"),
                         contains: "overlap")
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight, in: dir, name: "3"),
                         contains: "hole")
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: eight, in: dir, name: "4"),
                         contains: "trailing")
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: eight, in: dir, name: "5"),
                         contains: "truncated")
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#, data: eight, in: dir, name: "6"),
                         contains: "unsupported dtype Q4")
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}"#, data: eight, in: dir, name: "7"),
                         contains: "duplicate key \"a\"")
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight, in: dir, name: "8"),
                         contains: "invalid dimension")
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#, data: eight, in: dir, name: "9"),
                         contains: "not valid JSON")
        Self.expectError(Self.rawFile(#"[1,2]   "#, data: [], in: dir, name: "10"), contains: "start with '{'")
        Self.expectError(Self.rawFile(#"{"__metadata__":{"k":3}}"#, data: [], in: dir, name: "11"), contains: "not a string")
        Self.expectError(Self.rawFile(#"{"a":{"dtype":"F32","shape":[2]}}"#, data: eight, in: dir, name: "12"), contains: "data_offsets")
    }

    @Test func rejectsHugeHeaderLength() {
        let dir = TemporaryDirectory()
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(200_000_000).littleEndian) { bytes += $0 }
        bytes += Array("{}".utf8)
        let path = dir.sub("big.safetensors")
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        Self.expectError(path, contains: "exceeds the 100000000-byte limit")
    }

    @Test func missingFileNamesThePath() {
        Self.expectError("/nonexistent/model.safetensors", contains: "cannot open")
    }

    @Test func shardIndexMustMatchShards() throws {
        let dir = TemporaryDirectory()
        try SafetensorsWriter.write([TensorRecord(name: "a", shape: [1], floats: [1]), TensorRecord(name: "b", shape: [1], floats: [2])],
                                    to: dir.sub("s1.safetensors"))
        let index = #"{"metadata":{},"weight_map":{"a":"s1.safetensors"}}"#
        FileManager.default.createFile(atPath: dir.sub("model.safetensors.index.json"), contents: Data(index.utf8))
        #expect(throws: SafetensorsError.self) { try CheckpointFiles(directory: dir.path) }
        let index2 = #"{"metadata":{},"weight_map":{"a":"s1.safetensors","b":"s1.safetensors","c":"s1.safetensors"}}"#
        FileManager.default.createFile(atPath: dir.sub("model.safetensors.index.json"), contents: Data(index2.utf8))
        do {
            _ = try CheckpointFiles(directory: dir.path)
            Issue.record("index naming a tensor the shard lacks was accepted")
        } catch let e as SafetensorsError {
            #expect(e.problem.contains("no such tensor"))
        }
        let index3 = #"{"metadata":{},"weight_map":{"a":"s1.safetensors","b":"../s1.safetensors"}}"#
        FileManager.default.createFile(atPath: dir.sub("model.safetensors.index.json"), contents: Data(index3.utf8))
        #expect(throws: SafetensorsError.self) { try CheckpointFiles(directory: dir.path) }
    }

    @Test func atomicWriteLeavesNoPartialFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.sub("keep.safetensors")
        try SafetensorsWriter.write([TensorRecord(name: "a", shape: [1], floats: [1])], to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        // A record whose bytes disagree with its shape is refused before anything is written.
        #expect(throws: SafetensorsError.self) {
            try SafetensorsWriter.write([TensorRecord(name: "a", dtype: .f32, shape: [3], bytes: [0, 0, 0, 0])], to: path)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["keep.safetensors"])
    }
}
