import Foundation

/// `tessera-fuzz TARGET [FILE|DIR ...]`. Built normally it runs each input once (a corpus
/// replayed: the regression and CI smoke run); built with `-DFUZZING -sanitize=fuzzer`
/// (scripts/fuzz) it hands the target to libFuzzer, whose options follow the target.
#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) var fuzzTarget = FuzzTarget.json
#endif

@main struct TesseraFuzz {
    static func main() {
        let args = CommandLine.arguments
        guard args.count >= 2, let target = FuzzTarget(rawValue: args[1]) else {
            FileHandle.standardError.write(Data("usage: tessera-fuzz TARGET [inputs or libFuzzer options]\ntargets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " "))\n".utf8))
            exit(2)
        }
        #if FUZZING
        fuzzTarget = target
        // libFuzzer reads its own options and corpus directories after the target's name.
        var argc = CommandLine.argc - 1
        var argv = CommandLine.unsafeArgv.advanced(by: 1)
        argv.pointee = CommandLine.unsafeArgv.pointee
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            fuzzTarget.run(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
        #else
        var inputs: [String] = []
        for path in args.dropFirst(2) {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                inputs += ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { (path as NSString).appendingPathComponent($0) }
            } else {
                inputs.append(path)
            }
        }
        for path in inputs {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            data.withUnsafeBytes { target.run($0) }
        }
        print("\(target.rawValue): \(inputs.count) inputs, none trapped")
        try? FileManager.default.removeItem(atPath: FuzzTarget.scratch)
        #endif
    }
}
