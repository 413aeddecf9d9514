import Foundation
import Hummingbird
import NIOCore
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraMarket

/// Every failure becomes `{"error": {"code", "message"}}` with a status that names what
/// went wrong: 400 malformed, 401 a signature that does not verify, 403 a signer the rule
/// does not allow, 404, 409 an action the ledger's rules refuse, 413 too large, 425 too
/// early, 429 too many writes. Nothing the server did not anticipate leaks more than a 500
/// with its description.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = MarketRequestContext
    /// The routes, for answering 405 with `Allow` to a known path asked with another method.
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPResponseError {
            // Hummingbird's own (no such route, body too large while collecting).
            let status = e.status
            if status.code == 404 {
                let allowed = routes.methods(matching: request.uri.path)
                if !allowed.isEmpty {
                    var r = Self.response(status: 405, code: "method_not_allowed",
                                          message: "\(request.uri.path) takes \(allowed.joined(separator: ", ")), not \(request.method)")
                    r.headers[.allow] = allowed.joined(separator: ", ")
                    return r
                }
                return Self.response(status: 404, code: "not_found", message: "no route \(request.method) \(request.uri.path)")
            }
            return Self.response(status: Int(status.code), code: "http_\(status.code)", message: status.reasonPhrase)
        } catch {
            let (status, code, message) = Self.classify(error)
            if status >= 500 { context.logger.error("\(message)") }
            var response = Self.response(status: status, code: code, message: message)
            if let r = error as? RateLimited { response.headers[.retryAfter] = String(Int(r.seconds.rounded(.up)) + 0) }
            return response
        }
    }

    static func classify(_ error: Error) -> (Int, String, String) {
        switch error {
        case let e as MarketError:
            return (e.status, e.code, e.description)
        case let r as RateLimited:
            return (429, "rate_limited", "too many writes by this key; retry in " + String(format: "%.1f", r.seconds) + " s")
        case let e as LedgerError:
            switch e {
            case let .refused(why):
                if why.hasPrefix("bad signature") { return (401, "bad_signature", why) }
                if why.contains("is not registered") || why.contains("must be signed by the market operator") || why.contains(" is not a ") {
                    return (403, "not_allowed", why)
                }
                return (409, "refused", why)
            case let .corrupt(why):
                return (500, "ledger_corrupt", why)
            }
        case let e as LibraryError:
            return (400, "invalid_bundle", e.description)
        case let e as CoreError:
            return (400, "bad_request", e.description)
        default:
            return (500, "internal", "\(error)")
        }
    }

    static func response(status: Int, code: String, message: String) -> Response {
        struct Body: Encodable { struct E: Encodable { var code: String; var message: String }; var error: E }
        let bytes = Array(((try? JSONOutput.compact(Body(error: .init(code: code, message: message)))) ?? "{}").utf8)
        return Response(status: .init(code: status), headers: [.contentType: "application/json", .contentLength: String(bytes.count)],
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
