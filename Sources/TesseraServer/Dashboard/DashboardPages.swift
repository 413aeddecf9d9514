import Foundation
import Plot
import TesseraCore
import TesseraLedger
import TesseraMarket

/// The owners' dashboard: server-rendered HTML (Plot escapes every text) with SVG charts,
/// no script. Pages: the market, an expert, an owner, a validator.
enum DashboardPages {
    static let css = """
        body{font-family:'DejaVu Sans',sans-serif;margin:24px;color:#222;max-width:980px}
        nav a{margin-right:14px} table{border-collapse:collapse;margin:8px 0 18px} td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
        th{background:#f0f3f7;text-align:left} code{font-size:12px} .ok{color:#1a7f37} .no{color:#b42318} svg{display:block;margin:10px 0}
        """

    static func short(_ key: String) -> String { key.count > 12 ? String(key.prefix(12)) + "…" : key }

    static func page(_ title: String, _ body: Node<HTML.BodyContext>...) -> String {
        HTML(
            .head(.meta(.charset(.utf8)), .title("Tessera · " + title), .style(css)),
            .body(
                .nav(.a(.href("/"), .text("Market")), .a(.href("/v1/openapi.json"), .text("API"))),
                .h1(.text(title)),
                .group(body)
            )
        ).render()
    }

    static func link(_ text: String, _ href: String) -> Node<HTML.BodyContext> { .a(.href(href), .text(text)) }
    static func expertLink(_ id: ExpertID) -> Node<HTML.BodyContext> { link("\(id.layer):\(id.expert)", "/experts/\(id.layer):\(id.expert)") }
    static func ownerLink(_ key: String) -> Node<HTML.BodyContext> { link(short(key), "/owners/\(key)") }

    static func market(_ d: DashboardData) -> String {
        let s = d.state
        let rounds = s.rounds.sorted { $0.key < $1.key }
        let submissions = s.submissions.sorted { ($0.value.round, $0.key) < ($1.value.round, $1.key) }
        let validators = s.participants.filter { $0.value.roles.contains(.validator) }.map(\.key).sorted()
        let gains = submissions.compactMap { id, sub in
            sub.consensusGain.map { SVGChart.Bar(label: "\(sub.round) \(id.prefix(6))", value: Double($0) / 1000,
                                                color: sub.state == .rejected ? "#b42318" : "#1a7f37") }
        }
        let revenue = d.revenues.map { SVGChart.Bar(label: "\($0.revenue.domain) \($0.revenue.period.prefix(16))", value: Double($0.revenue.amount)) }
        let experts = s.experts.keys.sorted()
        return page("Market",
            .p(.text("\(s.seq) ledger events · \(s.domains.count) domains · \(s.rounds.count) rounds · \(s.submissions.count) submissions · \(experts.count) experts")),
            .h2("Domains"), .p(.text(s.domains.sorted().joined(separator: ", "))),
            .h2("Rounds"),
            .table(.tr(.th("round"), .th("domain"), .th("experts"), .th("closes at"), .th("state")),
                   .forEach(rounds) { id, r in
                       .tr(.td(.text(id)), .td(.text(r.domain)), .td(.text("\(r.experts.count)")), .td(.text(UTCTime.string(r.closesAt))),
                           .td(.text(r.open ? "open" : "closed")))
                   }),
            .h2("Submissions and verdicts"),
            .table(.tr(.th("submission"), .th("round"), .th("contributor"), .th("state"), .th("consensus gain (mnats/token)"),
                       .forEach(validators) { .th(.a(.href("/validators/\($0)"), .text("validator " + short($0)))) }),
                   .forEach(submissions) { id, sub in
                       .tr(.td(.code(.text(String(id.prefix(12))))), .td(.text(sub.round)), .td(.text(short(sub.contributor))),
                           .td(.text(sub.state.rawValue)), .td(.text(sub.consensusGain.map { String(format: "%.3f", Double($0) / 1000) } ?? "–")),
                           .forEach(validators) { v in
                               .td(.text(sub.verdicts[v].map { "\($0.accept ? "accept" : "reject") gain \(String(format: "%.3f", Double($0.gain) / 1000)), regression \(String(format: "%.3f", Double($0.regression) / 1000))" } ?? "–"))
                           })
                   }),
            .raw(SVGChart.bars("Consensus gain per submission (loss before − after)", gains, unit: "mnats/token", id: "chart-gains")),
            .h2("Revenue"),
            .raw(SVGChart.bars("Revenue per period", revenue, unit: "minor units", id: "chart-revenue")),
            .h2("Experts"),
            .p(.forEach(experts) { id in .group(expertLink(id), .text(" ")) })
        )
    }

    static func expert(_ d: DashboardData, _ report: Ledger.ExpertReport) -> String {
        let id = ExpertID(layer: report.layer, expert: report.expert)
        let holders = report.holders.sorted { $0.units > $1.units }
        let shares = holders.map { SVGChart.Bar(label: short($0.owner), value: 100 * Double($0.units) / Double(max(report.totalUnits, 1))) }
        let usage = d.revenues.compactMap { e -> SVGChart.Bar? in
            let units = e.revenue.usage.filter { $0.layer == id.layer && $0.expert == id.expert }.reduce(Int64(0)) { $0 &+ $1.usage }
            return units > 0 ? SVGChart.Bar(label: "\(e.revenue.domain) \(e.revenue.period.prefix(16))", value: Double(units), color: "#7a5195") : nil
        }
        let paid = d.payouts.filter { $0.layer == id.layer && $0.expert == id.expert }.reduce(Int64(0)) { $0 &+ $1.amount }
        return page("Expert \(id.layer):\(id.expert)",
            .p(.text("\(report.totalUnits) units · revenue \(report.revenue) minor units · paid out \(paid) · current version "), .code(.text(short(report.currentVersion)))),
            .h2("Version lineage"),
            .table(.tr(.th("version"), .th("parent"), .th("event"), .th("merged submissions")),
                   .forEach(report.versions) { v in
                       .tr(.td(.code(.text(short(v.hash)))), .td(.code(.text(v.parent.map(short) ?? "base"))), .td(.text("\(v.event)")),
                           .td(.text(v.submissions.map { String($0.prefix(8)) }.joined(separator: ", "))))
                   }),
            .h2("Holders"),
            .table(.tr(.th("owner"), .th("units"), .th("share")),
                   .forEach(holders) { h in
                       .tr(.td(ownerLink(h.owner)), .td(.text("\(h.units)")), .td(.text(String(format: "%.4f%%", 100 * Double(h.units) / Double(max(report.totalUnits, 1))))))
                   }),
            .raw(SVGChart.bars("Shares of expert \(id.layer):\(id.expert)", shares, unit: "%", id: "chart-shares")),
            .raw(SVGChart.bars("Metered usage per revenue period", usage, unit: "units", id: "chart-usage"))
        )
    }

    static func owner(_ d: DashboardData, key: String, _ report: SharesReport) -> String {
        let payouts = d.payouts.filter { $0.recipient == key }
        var byEvent: [Int64: Int64] = [:]
        for p in payouts { byEvent[p.event, default: 0] &+= p.amount }
        let overTime = byEvent.sorted { $0.key < $1.key }.map { SVGChart.Bar(label: "event \($0.key)", value: Double($0.value), color: "#1a7f37") }
        let holdings = report.holdings.map { SVGChart.Bar(label: "expert \($0.layer):\($0.expert)", value: 100 * $0.fraction) }
        return page("Owner \(short(key))",
            .p(.code(.text(key))),
            .h2("Holdings"),
            .table(.tr(.th("expert"), .th("units"), .th("of"), .th("share"), .th("payouts to date")),
                   .forEach(report.holdings) { h in
                       .tr(.td(expertLink(ExpertID(layer: h.layer, expert: h.expert))), .td(.text("\(h.units)")), .td(.text("\(h.totalUnits)")),
                           .td(.text(String(format: "%.4f%%", 100 * h.fraction))), .td(.text("\(h.payouts)")))
                   }),
            .raw(SVGChart.bars("Share of each expert held", holdings, unit: "%", id: "chart-holdings")),
            .h2("Payouts over time"),
            .p(.text("total \(payouts.reduce(Int64(0)) { $0 &+ $1.amount }) minor units" + (report.fees > 0 ? ", of which fees \(report.fees)" : ""))),
            .raw(SVGChart.bars("Payouts per revenue event", overTime, unit: "minor units", id: "chart-payouts"))
        )
    }

    static func validator(_ d: DashboardData, key: String) -> String {
        let rows = d.verdicts(of: key)
        let decided = rows.compactMap { DashboardData.agrees($0.verdict, outcome: $0.outcome) }
        let agreement = decided.isEmpty ? "no decided submissions yet" : String(format: "agrees with consensus on %d of %d decided submissions (%.0f%%)",
                                                                             decided.filter { $0 }.count, decided.count, 100 * Double(decided.filter { $0 }.count) / Double(decided.count))
        let gains = rows.map { SVGChart.Bar(label: "\($0.round) \($0.submission.prefix(6))", value: Double($0.verdict.gain) / 1000,
                                            color: $0.verdict.accept ? "#1a7f37" : "#b42318") }
        return page("Validator \(short(key))",
            .p(.code(.text(key))), .p(.text("stake \(d.state.participants[key]?.stake ?? 0) · \(rows.count) verdicts · \(agreement)")),
            .table(.tr(.th("submission"), .th("round"), .th("verdict"), .th("gain bound (mnats/token)"), .th("regression bound"), .th("outcome"), .th("agrees")),
                   .forEach(rows) { r in
                       .tr(.td(.code(.text(String(r.submission.prefix(12))))), .td(.text(r.round)), .td(.text(r.verdict.accept ? "accept" : "reject")),
                           .td(.text(String(format: "%.3f", Double(r.verdict.gain) / 1000))), .td(.text(String(format: "%.3f", Double(r.verdict.regression) / 1000))),
                           .td(.text(r.outcome)), .td(.text(DashboardData.agrees(r.verdict, outcome: r.outcome).map { $0 ? "yes" : "no" } ?? "pending")))
                   }),
            .raw(SVGChart.bars("Gain lower bound per verdict", gains, unit: "mnats/token", id: "chart-verdicts"))
        )
    }
}
