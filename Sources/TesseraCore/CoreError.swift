/// An error of the core helpers (files, keys, JSON and policy documents): a sentence
/// that names the file, field or value at fault.
public struct CoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
