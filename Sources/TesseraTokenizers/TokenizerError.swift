/// A tokenizer file that cannot be read, or uses a component this reader does not
/// implement (named, never guessed at).
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
