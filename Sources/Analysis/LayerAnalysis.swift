// What an analysis found, with the names of the reference file (../shared/reference, without its
// `analysis.` prefix) so that analysis.json reads like it. Layers are 0-based; per-layer lists have L
// entries; early-exit lists hold l = 1…L at indices 0…L−1.
import Foundation

/// The angular-distance matrices d[n][l] (null where undefined: n = 0 or l + n > L).
public struct AngularDistanceMatrices: Codable, Equatable, Sendable {
    /// Averaged over each sample's last real token.
    public var lastToken: [[Double?]]
    /// Averaged over every real token.
    public var allTokens: [[Double?]]

    enum CodingKeys: String, CodingKey {
        case lastToken = "last_token", allTokens = "all_tokens"
    }

    public init(lastToken: [[Double?]], allTokens: [[Double?]]) {
        self.lastToken = lastToken
        self.allTokens = allTokens
    }
}

/// Results of one `LayerAnalyzer` run.
public struct LayerAnalysis: Codable, Equatable, Sendable {
    /// The checkpoint directory analysed.
    public var model: String
    /// The dataset file, when the samples came from one.
    public var dataset: String?
    /// Sequences used.
    public var samples: Int
    /// Real tokens in them.
    public var tokens: Int
    /// Positions whose next-token loss counts (every token but each sequence's last).
    public var lossTokens: Int
    /// Most tokens per sequence.
    public var context: Int
    /// L
    public var layers: Int
    /// The block sizes n ranked in `bestBlockLastToken` / `bestBlockAllTokens`.
    public var blockSizes: [Int]
    /// Mean next-token loss of the full model.
    public var fullLoss: Double
    public var angularDistance: AngularDistanceMatrices
    /// BI_i, i = 0…L−1.
    public var blockInfluence: [Double]
    /// Loss with layer i alone removed, i = 0…L−1; nil unless the removal scan ran.
    public var removalLoss: [Double]?
    /// Loss of h_l through the final norm and lm_head, l = 1…L; nil unless early exit ran.
    public var earlyExitLoss: [Double]?
    /// Fraction of positions where that exit's argmax equals the full model's, l = 1…L.
    public var earlyExitTop1Agreement: [Double]?
    /// Best block per size n (keyed "1", "2", …) by the last-token distance.
    public var bestBlockLastToken: [String: BlockChoice]
    /// Best block per size n by the all-token distance.
    public var bestBlockAllTokens: [String: BlockChoice]

    enum CodingKeys: String, CodingKey {
        case model, dataset, samples, tokens, lossTokens = "loss_tokens", context, layers
        case blockSizes = "block_sizes", fullLoss = "full_loss", angularDistance = "angular_distance"
        case blockInfluence = "block_influence", removalLoss = "removal_loss", earlyExitLoss = "early_exit_loss"
        case earlyExitTop1Agreement = "early_exit_top1_agreement"
        case bestBlockLastToken = "best_block_last_token", bestBlockAllTokens = "best_block_all_tokens"
    }

    public init(model: String, dataset: String?, samples: Int, tokens: Int, lossTokens: Int, context: Int, layers: Int,
                blockSizes: [Int], fullLoss: Double, angularDistance: AngularDistanceMatrices, blockInfluence: [Double],
                removalLoss: [Double]?, earlyExitLoss: [Double]?, earlyExitTop1Agreement: [Double]?) {
        self.model = model
        self.dataset = dataset
        self.samples = samples
        self.tokens = tokens
        self.lossTokens = lossTokens
        self.context = context
        self.layers = layers
        self.blockSizes = blockSizes
        self.fullLoss = fullLoss
        self.angularDistance = angularDistance
        self.blockInfluence = blockInfluence
        self.removalLoss = removalLoss
        self.earlyExitLoss = earlyExitLoss
        self.earlyExitTop1Agreement = earlyExitTop1Agreement
        bestBlockLastToken = BlockRanking.best(angularDistance.lastToken, sizes: blockSizes)
        bestBlockAllTokens = BlockRanking.best(angularDistance.allTokens, sizes: blockSizes)
    }

    /// The best last-token block of size n.
    public func bestBlock(size n: Int) -> BlockChoice? { bestBlockLastToken[String(n)] }

    /// The `count` layers with the lowest Block Influence, ascending by layer index.
    public func lowestInfluenceLayers(_ count: Int) -> [Int] {
        let order = blockInfluence.indices.sorted { (blockInfluence[$0], $0) < (blockInfluence[$1], $1) }
        return Array(order.prefix(count)).sorted()
    }
}
