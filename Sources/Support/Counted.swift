// A count and its noun in prose ("1 layer", "2 layers"), written in one place so that reports and reasons
// read right at one, where "\(n) layers" would say "1 layers".

/// Counts with their nouns.
public enum Counted {
    /// "1 layer", "0 layers", "5 layers"; `plural` for nouns that take more than an "s" ("1 entry", "3 entries").
    public static func noun(_ n: Int, _ singular: String, plural: String? = nil) -> String {
        "\(n) " + (n == 1 ? singular : plural ?? singular + "s")
    }
}
