#ifndef PRUNE_SENTENCEPIECE_SHIM_H
#define PRUNE_SENTENCEPIECE_SHIM_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/// Opaque SentencePiece processor.
typedef struct spm_processor spm_processor;

/// Loads a tokenizer.model; returns NULL and writes a message into `err` (capacity `err_cap`) on failure.
spm_processor *spm_load(const char *path, char *err, size_t err_cap);
void spm_free(spm_processor *p);
int32_t spm_vocab_size(const spm_processor *p);
int32_t spm_bos_id(const spm_processor *p);
int32_t spm_eos_id(const spm_processor *p);
int32_t spm_unk_id(const spm_processor *p);
/// The piece's score (its log probability in a unigram model, its merge priority in a BPE one).
float spm_score(const spm_processor *p, int32_t id);
/// The piece's type, numbered as sentencepiece's ModelProto numbers them: 1 normal, 2 unknown, 3 control,
/// 5 unused, 6 byte (user-defined pieces report 1).
int32_t spm_piece_kind(const spm_processor *p, int32_t id);
/// Encodes UTF-8 text (no BOS). Writes at most `cap` ids; returns the total count (call again if larger).
/// Returns -1 on error.
int64_t spm_encode(const spm_processor *p, const char *text, size_t len, int32_t *ids, size_t cap);
/// Piece string of one id, malloc'd; the caller frees it with spm_free_string.
char *spm_id_to_piece(const spm_processor *p, int32_t id);
/// Decodes ids to UTF-8, malloc'd; the caller frees it with spm_free_string.
char *spm_decode(const spm_processor *p, const int32_t *ids, size_t n);
void spm_free_string(char *s);

#ifdef __cplusplus
}
#endif
#endif
