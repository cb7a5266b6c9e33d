// The flags a command line gave, read off the parsed command by their names, so that one declaration of a flag in
// `Finetune` (or in an option group it shares with prune) reaches `FinetuneOptions.applying` under that name, with
// no line per flag that copies it.
import ArgumentParser

/// A parsed argument that can say what the command line gave it.
protocol GivenArgument {
    /// The value given; nil for an option left out or a flag not given.
    var given: (any Encodable)? { get }
}

extension Option: GivenArgument where Value: Encodable {
    var given: (any Encodable)? {
        if let optional = wrappedValue as? any OptionalEncodable { return optional.wrapped }
        return wrappedValue
    }
}

extension Flag: GivenArgument where Value == Bool {
    var given: (any Encodable)? { wrappedValue ? true : nil }
}

/// An option group, whose flags are the command's own.
protocol GivenGroup {
    func givenFlags(except excluded: Set<String>) -> [String: any Encodable]
}

extension OptionGroup: GivenGroup {
    func givenFlags(except excluded: Set<String>) -> [String: any Encodable] { wrappedValue.givenFlags(except: excluded) }
}

/// An Optional seen through a protocol, so that a `Value?` can be unwrapped without knowing `Value`.
fileprivate protocol OptionalEncodable {
    var wrapped: (any Encodable)? { get }
}

extension Optional: OptionalEncodable where Wrapped: Encodable {
    fileprivate var wrapped: (any Encodable)? { map { $0 } }
}

extension ParsableArguments {
    /// The flags given on the command line, by long name ("lr", "weight-decay") with their values, those of its
    /// option groups included; a flag --no-X given is X: false. Flags named in `excluded` are left out.
    func givenFlags(except excluded: Set<String>) -> [String: any Encodable] {
        var flags: [String: any Encodable] = [:]
        for child in Mirror(reflecting: self).children {
            if let group = child.value as? GivenGroup {
                flags.merge(group.givenFlags(except: excluded)) { mine, _ in mine }
                continue
            }
            // A property wrapper is stored under its property's name with a leading underscore; ArgumentParser's long
            // name is that name with each capital turned into a dash and its lowercase letter.
            guard let stored = child.label, stored.hasPrefix("_"), let value = (child.value as? GivenArgument)?.given else { continue }
            let name = stored.dropFirst().reduce(into: "") { name, c in name += c.isUppercase ? "-" + c.lowercased() : String(c) }
            guard !excluded.contains(name) else { continue }
            if name.hasPrefix("no-"), value as? Bool == true {
                flags[String(name.dropFirst(3))] = false
            } else {
                flags[name] = value
            }
        }
        return flags
    }
}
