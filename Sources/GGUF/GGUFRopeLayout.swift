// Hugging Face's Llama rotates the two halves of each head (pair i with i + D/2); llama.cpp's `llama` architecture
// (LLAMA_ROPE_TYPE_NORM) rotates adjacent pairs (2i with 2i + 1). The same model in llama.cpp therefore needs the
// rows of q_proj and k_proj (and of their biases and LoRA B matrices) reordered within each head: the row of head h,
// half s, pair i moves to h·D + 2i + s — convert_hf_to_gguf.py's LlamaModel.permute. v, o and the MLP are unchanged.
// Dimension glossary: D head dim, R LoRA rank.
import Tensor

/// The q/k row order llama.cpp's rope expects.
public enum GGUFRopeLayout {
    /// `t` (rows = heads · D, any trailing width: a weight (rows, C), a bias (rows), a LoRA B (rows, R)) with its rows
    /// reordered from rotate-half to adjacent pairs within each of `heads` heads.
    public static func interleaved(_ t: Tensor, heads: Int) -> Tensor {
        let rows = t.shape[0]
        let width = t.count / rows
        let half = rows / heads / 2
        let out = Tensor(zeros: t.shape)
        for h in 0..<heads {
            for s in 0..<2 {
                for i in 0..<half {
                    let from = (h * 2 + s) * half + i, to = h * 2 * half + 2 * i + s
                    (out.data + to * width).update(from: t.data + from * width, count: width)
                }
            }
        }
        return out
    }
}
