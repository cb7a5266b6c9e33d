// The module graph as Package.swift declares it and as the sources use it: every target imports exactly
// the modules it declares (no more, no fewer), and every dependency points down the layers below (the
// direction Package.swift's header comment and the README's layout describe), so the graph has no cycle
// and no back-edge. A new target fails here until it is given a layer.
import Foundation
import TestSupport
import XCTest

final class ModuleGraphTests: XCTestCase {
    /// The layers, lowest first; a target may depend only on targets of lower layers.
    static let layers: [[String]] = [
        ["CBLAS", "CKernels", "CHDF5", "CSentencePiece", "CMPI", "CDNNL", "Support"],   // system-library shims, C kernels, plain utilities
        ["Tensor", "Tokenizers", "Reports", "Cluster"],
        ["Checkpoint", "Data"],
        ["Llama", "GGUF"],
        ["Analysis", "Surgery", "Training", "Generation"],
        ["Jobs"],
        ["Finetuning"],
        ["Bench", "Recipes"],
        ["CLISupport"],
        ["PruneCLI", "FinetuneCLI"],
    ]
    /// Test code sits above everything it tests; TestSupport above the modules it helps with.
    static let testLayer = ["TestSupport"]

    /// Modules that come with the toolchain or the OS, not from this package's targets or products.
    static let system: Set<String> = ["Foundation", "FoundationXML", "FoundationNetworking", "FoundationEssentials",
                                      "Glibc", "Darwin", "Dispatch", "XCTest", "Testing", "Synchronization"]

    /// One target of Package.swift.
    struct Target {
        var name: String
        var kind: String            // target, executableTarget, testTarget, systemLibrary
        var dependencies: Set<String>
        var path: String
    }

    /// The targets of Package.swift, read from its text: `.kind(name: "X", dependencies: [...], path: "...")`.
    static func targets() throws -> [Target] {
        let text = try String(contentsOf: Fixtures.projectRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let code = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.range(of: "//").map { String(line[..<$0.lowerBound]) } ?? String(line) }.joined(separator: "\n")
        var out: [Target] = []
        let kinds = ["target", "executableTarget", "testTarget", "systemLibrary"]
        var rest = Substring(code)
        while let call = kinds.compactMap({ kind in rest.range(of: ".\(kind)(").map { (kind, $0) } }).min(by: { $0.1.lowerBound < $1.1.lowerBound }) {
            // The call's argument text, to its matching parenthesis.
            var depth = 1
            var i = call.1.upperBound
            while depth > 0 {
                if rest[i] == "(" { depth += 1 } else if rest[i] == ")" { depth -= 1 }
                i = rest.index(after: i)
            }
            let args = String(rest[call.1.upperBound..<rest.index(before: i)])
            rest = rest[i...]
            guard let name = firstString(after: "name:", in: args) else { continue }
            var deps = Set<String>()
            if let start = args.range(of: "dependencies: [") {
                var d = 1
                var j = start.upperBound
                while d > 0 {
                    if args[j] == "[" { d += 1 } else if args[j] == "]" { d -= 1 }
                    j = args.index(after: j)
                }
                var list = String(args[start.upperBound..<args.index(before: j)])
                // .product(name: "ArgumentParser", package: "…") is the module ArgumentParser.
                while let product = list.range(of: #"\.product\(name: "([^"]+)"[^)]*\)"#, options: .regularExpression) {
                    deps.insert(firstString(after: "name:", in: String(list[product]))!)
                    list.removeSubrange(product)
                }
                deps.formUnion(strings(in: list))
            }
            let folder = call.0 == "testTarget" ? "Tests/\(name)" : "Sources/\(name)"
            out.append(Target(name: name, kind: call.0, dependencies: deps, path: firstString(after: "path:", in: args) ?? folder))
        }
        return out
    }

    static func strings(in text: String) -> [String] {
        text.split(separator: "\"", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    static func firstString(after key: String, in text: String) -> String? {
        guard let r = text.range(of: key) else { return nil }
        return strings(in: String(text[r.upperBound...])).first
    }

    /// The modules the Swift files under `path` import (lines inside multi-line string literals skipped).
    static func imports(under path: String) throws -> Set<String> {
        let root = Fixtures.projectRoot.appendingPathComponent(path)
        var out = Set<String>()
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        for case let url as URL in files where url.pathExtension == "swift" {
            var inString = false
            for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
                if line.components(separatedBy: "\"\"\"").count % 2 == 0 { inString.toggle(); continue }
                guard !inString else { continue }
                var words = line.split(separator: " ").map(String.init)
                while let first = words.first, first.hasPrefix("@") { words.removeFirst() }
                guard words.count >= 2, words[0] == "import" else { continue }
                let kinds: Set<String> = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"]
                let module = kinds.contains(words[1]) && words.count >= 3 ? words[2] : words[1]
                out.insert(String(module.split(separator: ".")[0]))
            }
        }
        return out
    }

    func testEveryTargetImportsExactlyWhatItDeclares() throws {
        let targets = try Self.targets()
        XCTAssertGreaterThan(targets.count, 20, "Package.swift was not read")
        let names = Set(targets.map(\.name))
        var problems: [String] = []
        for t in targets where t.kind != "systemLibrary" {
            let files = try FileManager.default.subpathsOfDirectory(atPath: Fixtures.projectRoot.appendingPathComponent(t.path).path)
            guard files.contains(where: { $0.hasSuffix(".swift") }) else { continue }   // C targets
            let used = try Self.imports(under: t.path).subtracting(Self.system)
            let unknown = used.subtracting(names).subtracting(["ArgumentParser", "Yams"])
            if !unknown.isEmpty { problems.append("\(t.name) imports \(unknown.sorted()), which no target or product provides") }
            let undeclared = used.subtracting(t.dependencies)
            let unused = t.dependencies.subtracting(used)
            if !undeclared.isEmpty { problems.append("\(t.name) imports \(undeclared.sorted()) without declaring it") }
            if !unused.isEmpty { problems.append("\(t.name) declares \(unused.sorted()) but imports none of it") }
        }
        print("module graph: \(targets.count) targets checked, imports against declared dependencies")
        XCTAssertEqual(problems, [], problems.joined(separator: "\n"))
    }

    func testDependenciesPointDownTheLayersOnly() throws {
        let targets = try Self.targets()
        var layer: [String: Int] = [:]
        for (i, names) in Self.layers.enumerated() { for n in names { layer[n] = i } }
        for n in Self.testLayer { layer[n] = Self.layers.count }
        var problems: [String] = []
        for t in targets {
            let own = t.kind == "testTarget" ? Self.layers.count + 1 : layer[t.name]
            guard let own else { problems.append("\(t.name) has no layer in ModuleGraphTests.layers"); continue }
            for d in t.dependencies.sorted() where d != "ArgumentParser" && d != "Yams" {
                guard let theirs = layer[d] else { problems.append("\(t.name) depends on \(d), which has no layer (a test target?)"); continue }
                if theirs >= own { problems.append("\(t.name) (layer \(own)) depends on \(d) (layer \(theirs)): a back-edge or sideways edge") }
            }
        }
        // With every edge going to a strictly lower layer the graph has no cycle; say so by walking it too.
        let edges = Dictionary(uniqueKeysWithValues: targets.map { ($0.name, $0.dependencies) })
        var state: [String: Int] = [:]   // 1 visiting, 2 done
        func visit(_ n: String, _ path: [String]) {
            if state[n] == 2 { return }
            if state[n] == 1 { problems.append("cycle: " + (path + [n]).joined(separator: " → ")); return }
            state[n] = 1
            for d in (edges[n] ?? []).sorted() { visit(d, path + [n]) }
            state[n] = 2
        }
        for t in targets { visit(t.name, []) }
        print("module graph: \(targets.count) targets, \(targets.map(\.dependencies.count).reduce(0, +)) edges, all pointing down")
        XCTAssertEqual(problems, [], problems.joined(separator: "\n"))
    }
}
