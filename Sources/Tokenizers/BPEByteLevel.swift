// GPT-2's reversible byte ↔ printable-character mapping (`bytes_to_unicode`), which byte-level BPE
// vocabularies are written in: every byte of the UTF-8 text becomes one visible character, so a
// token like "Ġthe" is the bytes " the".
import Foundation

extension BPETokenizer {
    /// The GPT-2 `bytes_to_unicode` table and its inverse.
    enum ByteLevel {
        /// The character standing for each byte (index = byte value).
        static let scalarOfByte: [Unicode.Scalar] = {
            // Printable Latin-1 bytes stand for themselves; the other 68 (controls, space, 0x7F–0xA0,
            // 0xAD) are moved to U+0100 and up, in byte order — exactly GPT-2's construction.
            var table = [Unicode.Scalar](repeating: "\0", count: 256)
            var next: UInt32 = 256
            for byte in 0..<256 {
                let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte)
                    || (0xAE...0xFF).contains(byte)
                if printable {
                    table[byte] = Unicode.Scalar(UInt32(byte))!
                } else {
                    table[byte] = Unicode.Scalar(next)!
                    next += 1
                }
            }
            return table
        }()

        /// The byte each mapped character stands for.
        static let byteOfScalar: [UInt32: UInt8] = {
            var inverse: [UInt32: UInt8] = [:]
            for (byte, scalar) in scalarOfByte.enumerated() { inverse[scalar.value] = UInt8(byte) }
            return inverse
        }()

        /// The vocabulary spelling of raw bytes ("Ġthe" for " the").
        static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
            var view = String.UnicodeScalarView()
            for byte in bytes { view.append(scalarOfByte[Int(byte)]) }
            return String(view)
        }

        /// The bytes a vocabulary spelling stands for, or nil if a character is outside the mapping
        /// (added tokens such as "<|im_start|>" map through; anything else is taken as plain UTF-8,
        /// as the tokenizers library's ByteLevel decoder does).
        static func decode(_ token: String) -> [UInt8]? {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(token.unicodeScalars.count)
            for scalar in token.unicodeScalars {
                guard let byte = byteOfScalar[scalar.value] else { return nil }
                bytes.append(byte)
            }
            return bytes
        }
    }
}
