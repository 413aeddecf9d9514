/// Charts drawn on the server as SVG: no script, they print and they render in any browser.
enum SVGChart {
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    struct Bar { var label: String; var value: Double; var color: String = "#3b6ea5" }

    /// Horizontal bars, one per item, labelled with its value; negative values extend left
    /// of a zero line.
    static func bars(_ title: String, _ items: [Bar], unit: String, id: String) -> String {
        let width = 780.0, labelWidth = 150.0, valueWidth = 190.0, row = 22.0
        let plot = width - labelWidth - valueWidth
        let most = max(items.map { abs($0.value) }.max() ?? 0, 1e-12)
        let hasNegative = items.contains { $0.value < 0 }
        let zero = labelWidth + (hasNegative ? plot / 2 : 0)
        let scale = (hasNegative ? plot / 2 : plot) / most
        let height = 30 + row * Double(max(items.count, 1)) + 8
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"\(escape(id))\" role=\"img\" aria-label=\"\(escape(title))\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">"
        svg += "<title>\(escape(title))</title><text x=\"0\" y=\"16\" font-weight=\"bold\">\(escape(title))</text>"
        if items.isEmpty { svg += "<text x=\"0\" y=\"44\" fill=\"#666\">nothing yet</text>" }
        for (i, item) in items.enumerated() {
            let y = 30 + row * Double(i)
            let w = abs(item.value) * scale
            let x = item.value < 0 ? zero - w : zero
            svg += "<text x=\"\(Int(labelWidth - 6))\" y=\"\(Int(y + 14))\" text-anchor=\"end\">\(escape(item.label))</text>"
            svg += "<rect x=\"\(fmt(x))\" y=\"\(Int(y + 3))\" width=\"\(fmt(max(w, 0.5)))\" height=\"\(Int(row - 6))\" fill=\"\(item.color)\"><title>\(escape(item.label)): \(escape(number(item.value))) \(escape(unit))</title></rect>"
            svg += "<text class=\"value\" x=\"\(Int(width - valueWidth + 6))\" y=\"\(Int(y + 14))\">\(escape(number(item.value))) \(escape(unit))</text>"
        }
        if hasNegative { svg += "<line x1=\"\(fmt(zero))\" y1=\"26\" x2=\"\(fmt(zero))\" y2=\"\(Int(height - 4))\" stroke=\"#333\"/>" }
        return svg + "</svg>"
    }

    static func fmt(_ x: Double) -> String { String(format: "%.1f", x) }
    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(format: "%.4g", x)
    }
}
