import Foundation
import Hummingbird
import Logging

/// One line per request once it is answered: method, path, status, milliseconds, under
/// the request's id (Hummingbird puts `hb.request.id` in the context's logger). Hummingbird's
/// LogRequestsMiddleware logs on arrival, before the status is known.
struct AccessLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            log(request, context, status: Int(response.status.code), since: start)
            return response
        } catch {
            log(request, context, status: (error as? HTTPResponseError).map { Int($0.status.code) } ?? 500, since: start)
            throw error
        }
    }

    func log(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        let d = ContinuousClock.now - start
        let ms = Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15
        context.logger.info("\(request.method) \(request.uri.path) \(status) \(String(format: "%.1f", ms)) ms")
    }
}
