import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraProof
import TesseraTokenizers
import TesseraCore
import TesseraTestSupport

@Suite struct CorpusTests {
    /// Fortune files with Windows line endings: "\r\n" is one Character in Swift, so
    /// splitting on "\n" alone made a whole file one document.
    @Test func windowsLineEndingsSeparateDocumentsToo() {
        #expect(Corpus.documents("first\r\nline\r\n%\r\nsecond\r\n%\r\n", separator: .fortune) == ["first\nline", "second"])
        #expect(Corpus.documents("one\r\n\r\ntwo", separator: .paragraph) == ["one", "two"])
        #expect(Corpus.documents("a\n%\nb", separator: .fortune) == ["a", "b"])
    }

    @Test func fortuneAndParagraphDocuments() {
        #expect(Corpus.documents("a b\n%\n\n%\nc\nd\n%\n", separator: .fortune) == ["a b", "c\nd"])
        #expect(Corpus.documents("one\ntwo\n\n\nthree\n", separator: .paragraph) == ["one\ntwo", "three"])
    }

    @Test func theKeyedSplitIsStableSecretAndNearItsRate() {
        let key = Array(repeating: UInt8(7), count: 32), other = Array(repeating: UInt8(8), count: 32)
        let docs = (0..<4000).map { "document number \($0)" }
        let held = docs.filter { Corpus.isHeldOut($0, key: key, bps: 2000) }
        #expect(abs(Double(held.count) / 4000 - 0.2) < 0.03)
        #expect(held == docs.filter { Corpus.isHeldOut($0, key: key, bps: 2000) })
        let heldOther = Set(docs.filter { Corpus.isHeldOut($0, key: other, bps: 2000) })
        // Another key picks a different, unpredictable set: overlap near 20% of 20%.
        #expect(abs(Double(Set(held).intersection(heldOther).count) / 4000 - 0.04) < 0.02)
    }

    /// With a tokenizer: each training document's ids, the end-of-text id between them,
    /// cut into windows; the tokenizer's hash in the report and in both token files.
    @Test func aTokenizerCorpusJoinsDocumentsWithTheEndOfTextToken() throws {
        let scratch = TemporaryDirectory("corpus")
        let dir = scratch.path
        let docs = (0..<60).map { "Documento \($0): ¿qué tal? Über 中文 🙂 \($0 * 7)" }
        try docs.joined(separator: "\n%\n").write(toFile: dir + "/f.txt", atomically: true, encoding: .utf8)
        let tokenizer = try Tokenizer(path: (ReferenceFixtures.projectRoot as NSString).appendingPathComponent("Tests/Fixtures/tokenizers/qwen2-bpe.json"))
        let eot = try #require(tokenizer.id(of: "<|endoftext|>"))
        let key = Array(repeating: UInt8(3), count: 16)
        let options = Corpus.Options(seq: 16, heldOutBps: 2500, key: key, separator: .fortune, tokenizer: tokenizer, endOfText: eot)
        let r = try Corpus.build(inputs: [dir + "/f.txt"], options: options, out: dir + "/out")
        #expect(r.tokenizerSHA256 == tokenizer.contentHash)
        var stream: [Int] = []
        for (i, d) in docs.filter({ !Corpus.isHeldOut($0, key: key, bps: 2500) }).enumerated() {
            if i > 0 { stream.append(eot) }
            stream += try tokenizer.encode(d)
        }
        let train = try TokenWindows.load(path: dir + "/out/train.safetensors")
        #expect(train.count == stream.count / 16 && train.ids.map(Int.init) == Array(stream.prefix(train.count * 16)))
        for file in ["train", "heldout"] {
            #expect(try SafetensorsFile(path: dir + "/out/\(file).safetensors").metadata["tessera.tokenizer_sha256"] == tokenizer.contentHash)
        }
        var noEnd = options
        noEnd.endOfText = nil
        #expect { try Corpus.build(inputs: [dir + "/f.txt"], options: noEnd, out: dir + "/out2") } throws: { "\($0)".contains("end-of-text") }
    }

    @Test func buildWritesWindowsWithoutLeakage() throws {
        let scratch = TemporaryDirectory("corpus")
        let dir = scratch.path
        let text = (0..<300).map { "Fortune \($0): a stitch in time saves \($0 % 9) more.\n" }.joined(separator: "%\n")
        try text.write(toFile: dir + "/f.txt", atomically: true, encoding: .utf8)
        let key = Array(repeating: UInt8(3), count: 16)
        let r = try Corpus.build(inputs: [dir + "/f.txt"], options: .init(seq: 32, heldOutBps: 2500, key: key, separator: .fortune), out: dir + "/out")
        #expect(r.documents == 300 && r.trainDocuments + r.heldOutDocuments == 300)
        #expect(r.trainWindows == r.trainBytes / 32 && r.heldOutWindows == r.heldOutBytes / 32)
        let train = try TokenBatch.load(path: dir + "/out/train.safetensors")
        let held = try TokenBatch.load(path: dir + "/out/heldout.safetensors")
        #expect(train.seq == 32 && train.batch == r.trainWindows && held.batch == r.heldOutWindows)
        // No held-out document's text appears in the training stream.
        let trainText = String(decoding: train.ids.map { UInt8($0) }, as: UTF8.self)
        for doc in Corpus.documents(text, separator: .fortune) where Corpus.isHeldOut(doc, key: key, bps: 2500) {
            #expect(!trainText.contains(doc))
        }
        #expect(throws: Error.self) { try Corpus.build(inputs: [dir + "/f.txt"], options: .init(seq: 32, heldOutBps: 2500, key: [1, 2], separator: .fortune), out: dir + "/o2") }
    }
}
