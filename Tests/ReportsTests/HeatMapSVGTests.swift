// HeatMapSVG: well-formed XML, one cell rectangle per defined value, labels, legend and atomic writing.
import Foundation
import FoundationXML
import Reports
import Support
import TestSupport
import XCTest
#if canImport(FoundationXML)
#endif
@testable import Reports

final class HeatMapSVGTests: XCTestCase {
    /// The elements of a parsed SVG, in document order, with their attributes and direct text.
    private struct Element {
        var name: String
        var attributes: [String: String]
        var text = ""
    }

    /// Parses `svg` with Foundation's XMLParser (a SAX parser: it fails on any well-formedness error).
    private final class Collector: NSObject, XMLParserDelegate {
        var elements: [Element] = []
        private var open: [Int] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            open.append(elements.count)
            elements.append(Element(name: name, attributes: attributes))
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            open.removeLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if let index = open.last { elements[index].text += string }
        }
    }

    private func parse(_ svg: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Element] {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        let ok = parser.parse()
        XCTAssertTrue(ok, "not well-formed XML: \(String(describing: parser.parserError))", file: file, line: line)
        XCTAssertEqual(collector.elements.first?.name, "svg", file: file, line: line)
        XCTAssertEqual(collector.elements.first?.attributes["xmlns"], "http://www.w3.org/2000/svg", file: file, line: line)
        return collector.elements
    }

    /// A triangular matrix shaped like d[n][l]: row n (1…L−1) has L − n + 1 start layers.
    private func angularDistances(layers: Int) -> [[Double?]] {
        (1..<layers).map { n in (0...(layers - n)).map { l in Double(n) / Double(layers) + Double(l) * 0.001 } }
    }

    func testOneRectanglePerDefinedCellAndLabels() throws {
        let matrix: [[Double?]] = [[0.1, nil, 0.3], [0.4, .nan], [nil, nil, 0.9]]
        let svg = HeatMapSVG.render(matrix: matrix, rowLabels: ["n=1", "n=2", "n=3"],
                                    columnLabels: ["layer 0", "layer 1", "layer 2"], title: "Angular distance",
                                    rowAxis: "block size n", columnAxis: "start layer l", legendTitle: "d(x_l, x_l+n)")
        let elements = try parse(svg)
        let cells = elements.filter { $0.name == "rect" && $0.attributes["class"] == "cell" }
        XCTAssertEqual(cells.count, 4, "0.1, 0.3, 0.4 and 0.9; nil and NaN are left blank")
        XCTAssertTrue(cells.allSatisfy { ($0.attributes["fill"] ?? "").hasPrefix("#") })

        let texts = Set(elements.filter { $0.name == "text" }.map(\.text))
        for label in ["n=1", "n=2", "n=3", "layer 0", "layer 1", "layer 2", "Angular distance",
                      "block size n", "start layer l", "d(x_l, x_l+n)", "undefined"] {
            XCTAssertTrue(texts.contains(label), "missing label \(label)")
        }
        // Values printed in the cells, and the legend spans the data.
        for value in ["0.10", "0.30", "0.40", "0.90"] { XCTAssertTrue(texts.contains(value), value) }
        XCTAssertEqual(elements.first { $0.attributes["class"] == "legend-min" }?.text, "0.10")
        XCTAssertEqual(elements.first { $0.attributes["class"] == "legend-max" }?.text, "0.90")
        // Lowest value gets the dark end of viridis, highest the yellow end.
        XCTAssertEqual(cells.first?.attributes["fill"], "#440154")
        XCTAssertEqual(cells.last?.attributes["fill"], "#fde725")
    }

    func testMarksOutlineOneCellPerRowAndAreExplainedInTheLegend() throws {
        let matrix: [[Double?]] = [[0.3, 0.1, 0.2], [0.5, 0.4], [nil, 0.9]]
        // Row 2 marks an undefined cell and row 3 is past the marks given: neither is drawn.
        let svg = HeatMapSVG.render(matrix: matrix, rowLabels: [], columnLabels: [], title: "t", rowAxis: "r",
                                    columnAxis: "c", marks: [1, 1, nil], markLabel: "best of its row")
        let elements = try parse(svg)
        let cells = elements.filter { $0.attributes["class"] == "cell" }
        let marks = elements.filter { $0.attributes["class"] == "mark" }
        XCTAssertEqual(marks.count, 2)
        // Each outline sits inside its cell: row 0 column 1 (0.1), row 1 column 1 (0.4).
        for (mark, cell) in zip(marks, [cells[1], cells[4]]) {
            let (mx, my) = (Double(mark.attributes["x"]!)!, Double(mark.attributes["y"]!)!)
            let (cx, cy) = (Double(cell.attributes["x"]!)!, Double(cell.attributes["y"]!)!)
            XCTAssertEqual(mx - cx, 3)
            XCTAssertEqual(my - cy, 3)
        }
        XCTAssertTrue(elements.contains { $0.attributes["class"] == "legend-mark" })
        XCTAssertTrue(elements.contains { $0.name == "text" && $0.text == "best of its row" })
        let unmarked = HeatMapSVG.render(matrix: matrix, rowLabels: [], columnLabels: [], title: "t", rowAxis: "r", columnAxis: "c")
        XCTAssertFalse(unmarked.contains("mark"))
    }

    func testALongTitleWrapsInsteadOfWideningASmallGrid() throws {
        let title = "Angular distance of the block of n layers from layer l (last token), a-checkpoint-with-a-long-name"
        let svg = HeatMapSVG.render(matrix: [[0.2, 0.1], [0.3]], rowLabels: [], columnLabels: [], title: title,
                                    rowAxis: "n", columnAxis: "l")
        let elements = try parse(svg)
        let width = try XCTUnwrap(Double(elements[0].attributes["width"]!))
        let lines = elements.filter { $0.name == "tspan" }.map(\.text)
        XCTAssertGreaterThan(lines.count, 1)
        XCTAssertEqual(lines.joined(separator: " "), title)
        let plot = try XCTUnwrap(elements.first { $0.attributes["class"] == "plot-background" })
        let plotRight = Double(plot.attributes["x"]!)! + Double(plot.attributes["width"]!)!
        XCTAssertLessThan(width, Double(title.count) * 16 * 0.6, "the title no longer sets the width")
        XCTAssertLessThan(width - plotRight, 300, "grid, legend and a margin, or the 320 px a title may take")
        for line in lines { XCTAssertLessThanOrEqual(Double(line.count) * 16 * 0.6, width - 30, line) }
        let grid = try XCTUnwrap(Double(plot.attributes["y"]!))
        XCTAssertEqual(grid, 44 + 20 * Double(lines.count - 1), "the grid moves down by the extra title lines")
    }

    func testSpecialCharactersAreEscaped() throws {
        let svg = HeatMapSVG.render(matrix: [[1, 2]], rowLabels: ["<a & b>"], columnLabels: ["\"x\"", "'y'"],
                                    title: "R&D <test>", rowAxis: "rows", columnAxis: "cols")
        let texts = try parse(svg).filter { $0.name == "text" }.map(\.text)
        for label in ["<a & b>", "\"x\"", "'y'", "R&D <test>"] { XCTAssertTrue(texts.contains(label), label) }
    }

    func testLargeGridOmitsValuesAndThinsLabels() throws {
        let matrix = angularDistances(layers: 64)
        let defined = matrix.reduce(0) { $0 + $1.count }
        let svg = HeatMapSVG.render(matrix: matrix, rowLabels: (1..<64).map(String.init),
                                    columnLabels: (0..<64).map(String.init), title: "64 layers",
                                    rowAxis: "n", columnAxis: "l", range: 0...1)
        let elements = try parse(svg)
        XCTAssertEqual(elements.filter { $0.attributes["class"] == "cell" }.count, defined)
        XCTAssertFalse(elements.contains { $0.attributes["class"] == "values" }, "64 columns: no values in cells")
        XCTAssertEqual(elements.first { $0.attributes["class"] == "legend-max" }?.text, "1.00", "the fixed range is used")
        let rowLabels = elements.filter { $0.name == "text" && ["1", "2", "3", "63"].contains($0.text) }
        XCTAssertFalse(rowLabels.isEmpty)
        let columnLabelCount = elements.firstIndex { $0.attributes["class"] == "column-labels" }.map { start in
            elements[(start + 1)...].prefix { $0.name == "text" }.count
        }
        XCTAssertNotNil(columnLabelCount)
        XCTAssertLessThan(columnLabelCount ?? 64, 64, "labels are thinned when cells are narrow")
    }

    func testEmptyAndConstantMatrices() throws {
        let empty = try parse(HeatMapSVG.render(matrix: [[nil, nil]], rowLabels: ["a"], columnLabels: ["x", "y"],
                                                title: "", rowAxis: "r", columnAxis: "c"))
        XCTAssertEqual(empty.filter { $0.attributes["class"] == "cell" }.count, 0)
        XCTAssertTrue(empty.contains { $0.text == "no values" })

        let constant = try parse(HeatMapSVG.render(matrix: [[0.5, 0.5]], rowLabels: [], columnLabels: [],
                                                   title: "flat", rowAxis: "r", columnAxis: "c"))
        let fills = Set(constant.filter { $0.attributes["class"] == "cell" }.compactMap { $0.attributes["fill"] })
        XCTAssertEqual(fills.count, 1, "one value, one colour (the middle of the scale)")
        XCTAssertTrue(constant.contains { $0.name == "text" && $0.text == "0" }, "missing labels fall back to indices")
    }

    func testColourScaleEndsAndClamping() {
        XCTAssertEqual(HeatMapSVG.color(at: 0).r, 0x44)
        XCTAssertEqual(HeatMapSVG.color(at: 1).g, 0xE7)
        XCTAssertEqual(HeatMapSVG.color(at: -3).b, HeatMapSVG.color(at: 0).b)
        XCTAssertEqual(HeatMapSVG.color(at: 7).r, HeatMapSVG.color(at: 1).r)
        XCTAssertEqual(HeatMapSVG.position(of: 3, in: 3...3), 0.5)
        XCTAssertEqual(HeatMapSVG.position(of: 1.5, in: 1...2), 0.5)
    }

    func testWriteIsAtomicAndReplaces() throws {
        let directory = try Fixtures.temporaryDirectory("heatmap-test")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("d.svg")
        try Data("old".utf8).write(to: url)
        let svg = HeatMapSVG.render(matrix: angularDistances(layers: 5), rowLabels: ["1", "2", "3", "4"],
                                    columnLabels: ["0", "1", "2", "3", "4"], title: "t", rowAxis: "n", columnAxis: "l")
        try HeatMapSVG.write(svg, to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), svg)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["d.svg"])

        let nowhere = directory.appendingPathComponent("missing/d.svg")
        XCTAssertThrowsError(try HeatMapSVG.write(svg, to: nowhere)) { error in
            XCTAssertEqual((error as? PruneError)?.subject, nowhere.path)
        }
    }
}
