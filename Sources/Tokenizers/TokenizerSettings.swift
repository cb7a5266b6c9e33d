// The parts of tokenizer_config.json (and special_tokens_map.json) that change encoding or chat.
import Foundation

/// Settings from tokenizer_config.json that every tokenizer kind honours.
public struct TokenizerSettings {
    public var addBOSToken: Bool?
    public var addEOSToken: Bool?
    public var bosToken: String?
    public var eosToken: String?
    public var unkToken: String?
    public var padToken: String?
    /// add_prefix_space, where the config states it.
    public var addPrefixSpace: Bool?
    /// added_tokens_decoder: tokens the config adds or marks, by id.
    public var addedTokensDecoder: [Int: (content: String, special: Bool)] = [:]
    /// Jinja chat template (a string, or the "default" entry of a list of named templates, or chat_template.jinja).
    public var chatTemplate: String?

    public init(directory: URL) {
        let config = Self.json(directory.appendingPathComponent("tokenizer_config.json")) ?? [:]
        let special = Self.json(directory.appendingPathComponent("special_tokens_map.json")) ?? [:]
        addBOSToken = config["add_bos_token"] as? Bool
        addEOSToken = config["add_eos_token"] as? Bool
        bosToken = Self.tokenString(config["bos_token"]) ?? Self.tokenString(special["bos_token"])
        eosToken = Self.tokenString(config["eos_token"]) ?? Self.tokenString(special["eos_token"])
        unkToken = Self.tokenString(config["unk_token"]) ?? Self.tokenString(special["unk_token"])
        padToken = Self.tokenString(config["pad_token"]) ?? Self.tokenString(special["pad_token"])
        addPrefixSpace = config["add_prefix_space"] as? Bool
        for (key, value) in (config["added_tokens_decoder"] as? [String: Any]) ?? [:] {
            guard let id = Int(key), let entry = value as? [String: Any], let content = entry["content"] as? String else { continue }
            addedTokensDecoder[id] = (content, (entry["special"] as? Bool) ?? false)
        }
        if let s = config["chat_template"] as? String {
            chatTemplate = s
        } else if let list = config["chat_template"] as? [[String: Any]] {
            chatTemplate = (list.first { ($0["name"] as? String) == "default" } ?? list.first)?["template"] as? String
        } else {
            // Newer checkpoints keep the template in its own file.
            chatTemplate = try? String(contentsOf: directory.appendingPathComponent("chat_template.jinja"), encoding: .utf8)
        }
    }

    /// A token given as a string or as {"content": ...}.
    static func tokenString(_ v: Any?) -> String? {
        if let s = v as? String { return s }
        if let d = v as? [String: Any] { return d["content"] as? String }
        return nil
    }

    static func json(_ url: URL) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}
