import CAMXMatmul
import TesseraCore

/// How the engine's float matrix products are computed.
///
/// `fp32` is OpenBLAS sgemm: the fastest float products on most processors, but OpenBLAS
/// orders its sums by kernel, so the last bits differ between processors. `fp32-fixed`
/// sums every element's products in order with fused multiply-adds (`CVectorMath`), giving
/// the same bits on every x86-64 processor: what verdicts that other machines re-check
/// use. `bf16x3` and `bf16x6` run on the AMX tile units of recent
/// Xeons: every float is split into bf16 pieces (x = x₀ + x₁, or x₀ + x₁ + x₂) and the
/// products of the leading pieces are summed in float — 3 bf16 products per float product
/// with about 16 significant bits per operand, or 6 with 24 (float's own). Measured
/// errors are in whitepaper-notes/engine.md; `tessera bench` prints the loss of both.
public enum MatmulPrecision: String, Sendable, CaseIterable, Codable {
    case fp32
    case fp32Fixed = "fp32-fixed"
    case bf16x3
    case bf16x6

    /// Whether this processor and kernel run the AMX paths.
    public static var amxAvailable: Bool { tsr_amx_available() == 1 }

    /// The precision a run uses when no one chose one: `TESSERA_MATMUL` when it names a
    /// usable precision, else bf16x3 where AMX is available and fp32-fixed elsewhere (it
    /// measured faster than OpenBLAS there as well as reproducible). Fixed for the life of
    /// the process; commands pass their `--matmul` choice explicitly.
    public static let machineDefault: MatmulPrecision = {
        if let p = try? fromEnvironment() { return p }
        return amxAvailable ? .bf16x3 : .fp32Fixed
    }()

    /// `TESSERA_MATMUL`, checked as `parse` checks a name; nil when it is not set.
    public static func fromEnvironment() throws -> MatmulPrecision? {
        guard let p = getenv("TESSERA_MATMUL") else { return nil }
        do { return try parse(String(cString: p)) } catch { throw EngineError.invalidInput("TESSERA_MATMUL: \(error)") }
    }

    /// False for the AMX precisions on a processor without AMX.
    public var isUsable: Bool { amxParts == nil || Self.amxAvailable }

    /// Router logits are always computed in float precision (routing is discontinuous):
    /// in the fixed order when the rest is, so routing reproduces too.
    /// Whether every processor gives the same bits: only fp32-fixed (the others go
    /// through OpenBLAS, at least for router logits, whose kernels differ by processor).
    public var isBitReproducible: Bool { self == .fp32Fixed }

    public var routerPrecision: MatmulPrecision { self == .fp32Fixed ? .fp32Fixed : .fp32 }

    /// Whether every product gives the same bits on every processor that can run it.
    public var isReproducibleAcrossProcessors: Bool { self == .fp32Fixed }

    /// Checks a precision asked for by name: unknown names and AMX precisions on a
    /// processor without AMX are errors that say what is available.
    public static func parse(_ name: String) throws -> MatmulPrecision {
        let usable = allCases.filter(\.isUsable).map(\.rawValue).joined(separator: ", ")
        guard let p = MatmulPrecision(rawValue: name) else {
            throw EngineError.invalidInput("matmul precision '\(name)' is not one of: \(usable)")
        }
        guard p.isUsable else {
            throw EngineError.invalidInput("matmul precision '\(name)' needs AMX with bf16 (Sapphire Rapids or later), which this processor or kernel does not offer; available: \(usable)")
        }
        return p
    }

    /// bf16 pieces per float on the AMX path (nil: OpenBLAS).
    @usableFromInline var amxParts: Int32? {
        switch self {
        case .fp32, .fp32Fixed: return nil
        case .bf16x3: return 2
        case .bf16x6: return 3
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
