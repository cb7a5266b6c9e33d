// extern "C" face of libsentencepiece's C++ SentencePieceProcessor.
#include "sentencepiece_shim.h"
#include <sentencepiece_processor.h>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

struct spm_processor {
    sentencepiece::SentencePieceProcessor sp;
};

static char *dup_string(const std::string &s) {
    char *out = static_cast<char *>(std::malloc(s.size() + 1));
    if (!out) return nullptr;
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = 0;
    return out;
}

extern "C" spm_processor *spm_load(const char *path, char *err, size_t err_cap) {
    auto *p = new spm_processor();
    auto status = p->sp.Load(path);
    if (!status.ok()) {
        if (err && err_cap > 0) {
            std::string m = status.ToString();
            std::strncpy(err, m.c_str(), err_cap - 1);
            err[err_cap - 1] = 0;
        }
        delete p;
        return nullptr;
    }
    return p;
}

extern "C" void spm_free(spm_processor *p) { delete p; }
extern "C" int32_t spm_vocab_size(const spm_processor *p) { return p->sp.GetPieceSize(); }
extern "C" int32_t spm_bos_id(const spm_processor *p) { return p->sp.bos_id(); }
extern "C" int32_t spm_eos_id(const spm_processor *p) { return p->sp.eos_id(); }
extern "C" int32_t spm_unk_id(const spm_processor *p) { return p->sp.unk_id(); }
extern "C" float spm_score(const spm_processor *p, int32_t id) { return p->sp.GetScore(id); }

extern "C" int32_t spm_piece_kind(const spm_processor *p, int32_t id) {
    // The order sentencepiece's own converters test them in (a piece has one type in the model).
    if (p->sp.IsUnknown(id)) return 2;
    if (p->sp.IsControl(id)) return 3;
    if (p->sp.IsUnused(id)) return 5;
    if (p->sp.IsByte(id)) return 6;
    return 1;
}

extern "C" int64_t spm_encode(const spm_processor *p, const char *text, size_t len, int32_t *ids, size_t cap) {
    std::vector<int> out;
    auto status = p->sp.Encode(std::string(text, len), &out);
    if (!status.ok()) return -1;
    for (size_t i = 0; i < out.size() && i < cap; ++i) ids[i] = out[i];
    return static_cast<int64_t>(out.size());
}

extern "C" char *spm_id_to_piece(const spm_processor *p, int32_t id) {
    return dup_string(p->sp.IdToPiece(id));
}

extern "C" char *spm_decode(const spm_processor *p, const int32_t *ids, size_t n) {
    std::vector<int> v(ids, ids + n);
    std::string out;
    auto status = p->sp.Decode(v, &out);
    if (!status.ok()) return nullptr;
    return dup_string(out);
}

extern "C" void spm_free_string(char *s) { std::free(s); }
