// `prune run RECIPE [key=value ...]`: a whole pruning study from one YAML recipe (Recipes/*.yaml), every stage's
// output in the recipe's run directory, finished stages skipped on a rerun.
import ArgumentParser
import CLISupport
import Foundation
import Recipes

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a study from a YAML recipe: analyze, choose, cut, evaluate, heal, evaluate, export, report (or, with layerskip:, train for early exit and measure self-speculation).",
        discussion: """
        Overrides set any key of the recipe by its dotted path, the value read as YAML:
          prune run Recipes/quickstart.yaml heal.steps=50 output=out/q2 'cut.strategies=[angular, loss]'

        A stage whose inputs (content hash) and settings are unchanged is skipped, so a rerun resumes where it stopped.
        """)

    @Argument(help: "The recipe (YAML).")
    var recipe: String

    @Argument(help: "Overrides: dotted.key=value, e.g. heal.steps=50.")
    var overrides: [String] = []

    @Flag(name: .long, help: "Validate the recipe and print it resolved, without running it.")
    var check = false

    func run() throws {
        let resolved = try Recipe.load(URL(fileURLWithPath: recipe), displayPath: recipe, overrides: overrides)
        if check {
            print(try resolved.resolvedYAML(), terminator: "")
            return
        }
        if resolved.layerskip != nil {
            let study = try LayerSkipStudy(recipe: resolved, recipeFile: recipe)
            study.progress = ProgressPrinter().sink
            let summary = try study.run()
            for m in summary.models {
                print(String(format: "%@: perplexity %.2f; plain %.1f tokens/s, exit:auto %.1f tokens/s (%.2f×)%@", m.label, m.perplexity,
                             m.plainTokensPerSecond, m.autoTokensPerSecond, m.speedup, m.identical ? "" : "; OUTPUT DIFFERS"))
            }
            if let f = summary.finalModel { print("final: \(resolved.output)/\(f)") }
            print("report: \(resolved.output)/report.md, \(resolved.output)/report.html")
            return
        }
        let runner = RecipeRunner(recipe: resolved, recipeFile: recipe)
        runner.progress = ProgressPrinter().sink
        let summary = try runner.run()
        print(String(format: "full model: perplexity %.2f", summary.full.perplexity))
        for s in summary.strategies {
            print("\(s.choice.strategy.rawValue): drop \(s.choice.rangesText)  perplexity " + String(format: "%.2f", s.cut.perplexity)
                  + (s.healed.map { String(format: " → healed %.2f", $0.perplexity) } ?? ""))
        }
        print("report: \(resolved.output)/report.md, \(resolved.output)/report.html")
    }
}
