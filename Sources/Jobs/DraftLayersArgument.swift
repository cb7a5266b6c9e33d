// `--speculate exit:E` or `--speculate skip:LIST` as the user types it; the list is read by LayerSelection like
// every other layer list, so that "skip:2,2" or "skip:3-1" is refused as `prune cut --layers` refuses it.
import Generation
import Llama
import Support

extension DraftLayers {
    /// Parses `exit:E` or `skip:LIST` (0-based, inclusive ranges and commas: `skip:11-18`, `skip:3,5-6`); `option`
    /// names the flag in errors.
    public init(parsing argument: String, option: String = "--speculate") throws {
        if argument.hasPrefix("exit:") {
            guard let e = Int(argument.dropFirst(5)) else {
                throw PruneError(option, "\"\(argument)\": exit:E needs a layer count E, e.g. exit:4, or exit:auto")
            }
            self = .exit(e)
        } else if argument.hasPrefix("skip:") {
            self = .skip(Set(try LayerSelection(parsing: String(argument.dropFirst(5)), option: option).layers))
        } else {
            throw PruneError(option, "\"\(argument)\" is not exit:E or skip:LIST (e.g. exit:4, skip:11-18)")
        }
    }
}

/// `--speculate` as given: draft layers fixed by the user, or `exit:auto` (chosen by calibration, SpeculationSetup).
public enum DraftSelection: Equatable, Sendable {
    case layers(DraftLayers)
    case automaticExit

    /// Parses `exit:auto`, `exit:E` or `skip:LIST` (see DraftLayers(parsing:)).
    public init(parsing argument: String, option: String = "--speculate") throws {
        self = argument == "exit:auto" ? .automaticExit : .layers(try DraftLayers(parsing: argument, option: option))
    }
}
