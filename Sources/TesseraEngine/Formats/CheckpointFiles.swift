import Foundation
import TesseraCore

/// The tensors of a Hugging Face checkpoint directory: one `model.safetensors`, or the
/// shards that `model.safetensors.index.json` names. Every tensor lives in exactly one file.
public final class CheckpointFiles: @unchecked Sendable {
    public let directory: String
    public let files: [SafetensorsFile]
    /// Tensor name → (index into `files`, entry).
    public let entries: [String: (file: Int, info: TensorInfo)]

    public var tensorNames: [String] { entries.keys.sorted() }

    public init(directory: String) throws {
        self.directory = directory
        let fm = FileManager.default
        let single = (directory as NSString).appendingPathComponent("model.safetensors")
        let index = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        var files: [SafetensorsFile] = []
        var entries: [String: (file: Int, info: TensorInfo)] = [:]
        if fm.fileExists(atPath: index) {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: index)) } catch {
                throw SafetensorsError(file: index, "cannot read: \(error.localizedDescription)")
            }
            let json: JSONValue
            do { json = try JSONValue.parse(data) } catch {
                throw SafetensorsError(file: index, "not valid JSON (\(error))")
            }
            guard let map = json["weight_map"]?.objectMembers else {
                throw SafetensorsError(file: index, "no weight_map object")
            }
            var fileIndex: [String: Int] = [:]
            var listed: [String: String] = [:]
            for (tensor, fileValue) in map {
                guard let fileName = fileValue.stringValue, !fileName.contains("/"), !fileName.isEmpty else {
                    throw SafetensorsError(file: index, "weight_map entry for \(tensor) is not a plain file name")
                }
                listed[tensor] = fileName
                if fileIndex[fileName] == nil {
                    fileIndex[fileName] = files.count
                    files.append(try SafetensorsFile(path: (directory as NSString).appendingPathComponent(fileName)))
                }
            }
            for (tensor, fileName) in listed {
                let fi = fileIndex[fileName]!
                guard let info = files[fi].tensors[tensor] else {
                    throw SafetensorsError(file: files[fi].path, "weight_map in \(index) places \(tensor) here, but the file has no such tensor")
                }
                entries[tensor] = (fi, info)
            }
            for (fi, f) in files.enumerated() {
                for name in f.names where listed[name] != (f.path as NSString).lastPathComponent || entries[name]?.file != fi {
                    throw SafetensorsError(file: f.path, "tensor \(name) is in this shard but weight_map in \(index) does not place it here")
                }
            }
        } else if fm.fileExists(atPath: single) {
            let f = try SafetensorsFile(path: single)
            files = [f]
            for name in f.names { entries[name] = (0, f.tensors[name]!) }
        } else {
            throw SafetensorsError(file: directory, "no model.safetensors or model.safetensors.index.json in this directory")
        }
        self.files = files
        self.entries = entries
    }

    public func info(_ name: String) -> TensorInfo? { entries[name]?.info }

    public func bytes(_ name: String) -> UnsafeRawBufferPointer? {
        guard let e = entries[name] else { return nil }
        return files[e.file].bytes(of: e.info)
    }

    public func path(of name: String) -> String? {
        entries[name].map { files[$0.file].path }
    }
}
