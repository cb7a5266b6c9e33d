// LayerProfileSVG: one panel per series, one point per defined value, a line broken where a value is
// undefined, the lowest value circled where asked, the reference line, and well-formed XML.
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import Reports

final class LayerProfileSVGTests: XCTestCase {
    /// Class and tag of every element, with its attributes, from a well-formedness-checking parse.
    private final class Collector: NSObject, XMLParserDelegate {
        var elements: [(name: String, attributes: [String: String])] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            elements.append((name, attributes))
        }
    }

    private func parse(_ svg: String) throws -> [(name: String, attributes: [String: String])] {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "not well-formed XML: \(String(describing: parser.parserError))")
        return collector.elements
    }

    func testPanelsPointsBreaksLowestAndReference() throws {
        let svg = LayerProfileSVG.render(title: "<t> & u", panels: [
            .init(title: "Block Influence", values: [0.5, 0.2, 0.1, 0.3], marksLowest: true),
            .init(title: "Removal loss", values: [5, nil, 4.5, 4.8], reference: (4.4, "full model"), marksLowest: true),
            .init(title: "nothing", values: [nil, nil]),
        ])
        let elements = try parse(svg)
        XCTAssertEqual(elements.filter { $0.attributes["class"] == "panel-title" }.count, 3)
        XCTAssertEqual(elements.filter { $0.attributes["class"] == "point" }.count, 4 + 3)
        let paths = elements.filter { $0.attributes["class"] == "series" }.map { $0.attributes["d"]! }
        XCTAssertEqual(paths.count, 2)
        XCTAssertEqual(paths[0].filter { $0 == "M" }.count, 1)
        XCTAssertEqual(paths[1].filter { $0 == "M" }.count, 2, "the line breaks at the undefined layer")
        // The lowest point of each marked panel is circled: layer 2 in both.
        let points = elements.filter { $0.attributes["class"] == "point" }
        let lowest = elements.filter { $0.attributes["class"] == "lowest" }
        XCTAssertEqual(lowest.count, 2)
        XCTAssertEqual(lowest.map { $0.attributes["cx"] }, [points[2].attributes["cx"], points[5].attributes["cx"]])
        // In each panel a lower value is drawn lower (larger y).
        XCTAssertGreaterThan(Double(points[2].attributes["cy"]!)!, Double(points[0].attributes["cy"]!)!)
        XCTAssertEqual(elements.filter { $0.attributes["class"] == "reference" }.count, 1)
        XCTAssertTrue(svg.contains("no values"))
        XCTAssertTrue(svg.contains(">&lt;t&gt; &amp; u</text>"))
    }

    func testManyLayersKeepLabelsApart() throws {
        let values = (0..<100).map { Double?(Double($0 % 7)) }
        let elements = try parse(LayerProfileSVG.render(title: "t", panels: [.init(title: "p", values: values)]))
        XCTAssertEqual(elements.filter { $0.attributes["class"] == "point" }.count, 100)
        let width = Double(elements[0].attributes["width"]!)!
        XCTAssertLessThanOrEqual(width, 64 + 1400 + 24)
        // Labels are at least 18 px apart: fewer than 100 of them.
        let labels = elements.filter { $0.name == "text" }.count
        XCTAssertLessThan(labels, 100)
    }
}
