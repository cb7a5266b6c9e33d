// Every layer list a user types (prune cut --layers, finetune --lora-layers/--train-layers, generate --speculate
// skip:LIST, a recipe's cut.layers and heal.train_layers) is read by LayerSelection: they accept the same lists and
// refuse the same slips, each in one line naming the flag or key.
import Finetuning
import Foundation
import Generation
import Jobs
import Llama
import Recipes
import Support
import TestSupport
import XCTest

final class LayerListTests: XCTestCase {
    let slips = ["2,2", "3,2-4", "3,,5", "1,", ",1", "5-3", "-1", "2,-1", "1--2", "a", ""]

    /// Each reader of layer lists, as a function of the text: the layers, or the error's one line.
    var readers: [(name: String, read: (String) throws -> [Int])] {
        [("prune cut --layers", { try LayerSelection(parsing: $0).layers }),
         ("finetune --train-layers", { try FinetuneOptions.layers($0, of: 12, option: "--train-layers") }),
         ("generate --speculate skip:", { text in
             guard case .skip(let s) = try DraftLayers(parsing: "skip:" + text) else { return [] }
             return s.sorted()
         }),
         ("recipe cut.layers", { text in
             let recipe = try Recipe.parse("model: m\noutput: o\ndata: {valid: v.jsonl}\ncut: {strategy: layers, layers: \"\(text)\"}\nheal: {enabled: false}\n",
                                           file: "r.yaml")
             return try LayerSelector.choose(.layers, count: nil, layerCount: 12, analysis: nil, lossScan: nil,
                                             explicit: recipe.cut.layers, allowFirstLayer: true, force: true).dropped
         }),
         ("recipe heal.train_layers", { text in
             let recipe = try Recipe.parse("model: m\noutput: o\ndata: {valid: v.jsonl, train: t.jsonl}\ncut: {strategy: layers, layers: 1}\n"
                                           + "heal: {method: partial, train_layers: \"\(text)\"}\n", file: "r.yaml")
             return try FinetuneOptions.layers(recipe.heal.trainLayers ?? "", of: 12, option: "heal.train_layers")
         })]
    }

    func testEveryReaderAcceptsTheSameLists() throws {
        for (text, layers) in [("3,7-9", [3, 7, 8, 9]), (" 9 , 1-2 ", [1, 2, 9]), ("0-0", [0]), ("10-11", [10, 11])] {
            for reader in readers {
                XCTAssertEqual(try reader.read(text), layers, "\(reader.name) \"\(text)\"")
            }
        }
    }

    func testEveryReaderRefusesTheSameSlipsInOneLineNamingItsFlag() {
        let names = ["prune cut --layers": "--layers", "finetune --train-layers": "--train-layers", "generate --speculate skip:": "--speculate",
                     "recipe cut.layers": "cut.layers", "recipe heal.train_layers": "train_layers"]
        for slip in slips {
            for reader in readers {
                XCTAssertThrowsError(try reader.read(slip), "\(reader.name) accepted \"\(slip)\"") { error in
                    let line = "\(error)"
                    XCTAssertFalse(line.contains("\n"), line)
                    XCTAssertTrue(line.contains(names[reader.name]!), "\(reader.name) \"\(slip)\": \(line)")
                }
            }
        }
    }

    func testTheRefusalsSayWhatIsWrong() {
        for (slip, words) in [("2,2", "2 is given twice in \"2,2\""), ("3,2-4", "3 is given twice"), ("3,,5", "empty item"),
                              ("5-3", "runs backwards (write 3-5)"), ("-1", "counted from 0")] {
            for reader in readers {
                XCTAssertThrowsError(try reader.read(slip)) { error in
                    XCTAssertTrue("\(error)".contains(words), "\(reader.name) \"\(slip)\": \(error)")
                }
            }
        }
    }

    func testDraftArguments() throws {
        XCTAssertEqual(try DraftLayers(parsing: "exit:4"), .exit(4))
        XCTAssertEqual(try DraftLayers(parsing: "skip:11-18"), .skip(Set(11...18)))
        for bad in ["exit:", "exit:x", "4", "early:3", "skip:"] {
            XCTAssertThrowsError(try DraftLayers(parsing: bad), bad) { XCTAssertTrue("\($0)".hasPrefix("--speculate: "), "\($0)") }
        }
    }
}
