import ArgumentParser

@main
struct Tessera: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "An expert market for Mixture-of-Experts language models.",
        subcommands: [Eval.self, Grad.self, Init.self, CorpusCommand.self, Pretrain.self, Select.self, Train.self, Validate.self, VerdictCommand.self, Merge.self, ValidateBench.self, DemoCommand.self, Split.self, Assemble.self, Library.self, Delta.self, Keys.self, BundleCommand.self, MarketCommand.self, LedgerCommand.self, Bench.self, ServerBench.self, CompletionsBench.self, Serve.self, Fetch.self, Contribute.self, ValidatorCommand.self, TokenizeCommand.self, GenerateCommand.self, AuditCommand.self, ReceiptCheckCommand.self])
}
