import ArgumentParser
import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

struct Split: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Split a Hugging Face MoE checkpoint into a trunk shard and one shard per routed expert.")
    @Option(help: "Hugging Face checkpoint directory.")
    var model: String
    @Option(help: "Library directory to create (or to confirm, when it already holds this model).")
    var library: String

    func run() throws {
        let s = try ExpertLibrary.split(checkpoint: model, into: library, progress: true)
        print(s.changed
            ? "split \(s.experts) experts and the trunk (\(s.bytes) bytes of tensors) into \(library); trunk \(s.trunk.prefix(12))"
            : "\(library) already holds this model; nothing written")
        if !s.ignored.isEmpty {
            print("left out \(s.ignored.count) tensors of the multi-token-prediction layer (\(s.ignored[0]), …): transformers does not load them either")
        }
    }
}

struct Assemble: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a Hugging Face checkpoint from a library, in the source's layout.")
    @Option(help: "Library directory.")
    var library: String
    @Option(name: .customLong("version"), help: "Use this version of an expert, LAYER:EXPERT=HASH (repeatable); the current version otherwise.")
    var versions: [String] = []
    @Option(help: "Output checkpoint directory.")
    var out: String

    func run() throws {
        let lib = try ExpertLibrary(directory: library)
        let requantized = try lib.assemble(versions: try ModelSource.parseVersionChoices(versions), into: out)
        for r in requantized {
            print("expert \(r.expert): version \(r.version.prefix(12)) quantised to MXFP4 (relative error \(String(format: "%.3g", r.relativeError)); the library keeps it in bf16)")
        }
        print("wrote \(out)")
    }
}

struct Library: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect an expert library.", subcommands: [Show.self, Log.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The library's model and every expert's current version.")
        @Argument(help: "Library directory.") var directory: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            let lib = try ExpertLibrary(directory: directory)
            let m = lib.manifest
            if json {
                print(try jsonString(LibraryReport(manifest: m)))
                return
            }
            print("library \(directory): \(m.modelType), \(m.expertLayout.rawValue) expert layout, \(m.tensors.count) tensors in \(m.sourceFiles.count) file(s)")
            print("trunk \(m.trunk)")
            print("expert  versions  current       parent")
            for e in m.experts {
                let head = e.head
                print(String(format: "%-7@ %8d  %@  %@", "\(e.id)" as NSString, e.versions.count,
                             String(head.hash.prefix(12)) as NSString, (head.parent.map { String($0.prefix(12)) } ?? "-") as NSString))
            }
        }
    }

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The version chain of one expert, oldest first.")
        @Argument(help: "Library directory.") var directory: String
        @Argument(help: "The expert, LAYER:EXPERT.") var expert: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            let lib = try ExpertLibrary(directory: directory)
            let ids = try ModelSource.parseExpertSet(expert)
            guard ids.count == 1, let entry = lib.manifest.entry(ids.first!) else {
                throw ValidationError("expert \(expert) is not in library \(directory)")
            }
            if json {
                print(try jsonString(entry))
                return
            }
            for (i, v) in entry.versions.enumerated() {
                let mark = i == entry.versions.count - 1 ? " (current)" : ""
                print("version \(i) \(v.hash)\(mark)")
                print("  parent      \(v.parent ?? "-")")
                print("  origin      \(v.origin)")
                print("  produced by \(v.producedBy.isEmpty ? "-" : v.producedBy.joined(separator: ", "))")
            }
        }
    }
}

struct LibraryReport: Encodable {
    var manifest: LibraryManifest
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: K.self)
        try c.encode(manifest.modelType, forKey: .modelType)
        try c.encode(manifest.expertLayout, forKey: .expertLayout)
        try c.encode(manifest.trunk, forKey: .trunk)
        try c.encode(manifest.experts, forKey: .experts)
    }
    enum K: String, CodingKey {
        case trunk, experts
        case modelType = "model_type"
        case expertLayout = "expert_layout"
    }
}

func jsonString<T: Encodable>(_ value: T) throws -> String { try JSONOutput.compact(value) }
