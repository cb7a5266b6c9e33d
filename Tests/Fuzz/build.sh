#!/usr/bin/env bash
# Builds one libFuzzer executable per Tests/Fuzz/Targets/*.swift into .build/fuzz/bin, against the library
# sources (Support, Tensor, Checkpoint, Tokenizers, Data) compiled with -sanitize=fuzzer,address. Not part of
# `swift test`; Tests/Fuzz/run.sh calls it. Needs the Swift toolchain's clang (libclang_rt.fuzzer) and the
# system libraries the package links (libsentencepiece).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/.build/fuzz"
mkdir -p "$out/obj" "$out/modules" "$out/bin"
swiftc=${SWIFTC:-swiftc}
bindir=$(dirname "$(command -v "$swiftc")")
cc=${CC:-$bindir/clang}
cxx=${CXX:-$bindir/clang++}
cd "$root"

# C modules: module maps for Swift, objects without coverage (the kernels parse no input).
for m in CBLAS CKernels CSentencePiece CDNNL; do
  hdr=$(ls "$root/Sources/$m/include/"*.h)
  mkdir -p "$out/modules/$m"
  printf 'module %s {\n  header "%s"\n  export *\n}\n' "$m" "$hdr" > "$out/modules/$m/module.modulemap"
done
"$cc" -O2 -c Sources/CBLAS/blas_loader.c -ISources/CBLAS/include -o "$out/obj/blas_loader.o"
"$cc" -O2 -c Sources/CDNNL/dnnl_loader.c -ISources/CDNNL/include -o "$out/obj/dnnl_loader.o"
for f in Sources/CKernels/*.c; do
  "$cc" -O2 -c "$f" -ISources/CKernels/include -o "$out/obj/CKernels-$(basename "$f" .c).o"
done
"$cxx" -O2 -fsanitize=address -c Sources/CSentencePiece/sentencepiece_shim.cpp -ISources/CSentencePiece/include \
  -o "$out/obj/sentencepiece_shim.o"

flags=(-swift-version 5 -O -sanitize=fuzzer,address -parse-as-library -I "$out/modules" -I "$out/modules/CBLAS"
       -I "$out/modules/CKernels" -I "$out/modules/CSentencePiece" -I "$out/modules/CDNNL")
# Library modules in dependency order, each one object and one .swiftmodule.
for m in Support Tensor Checkpoint Tokenizers Data; do
  if [ "$out/obj/$m.o" -nt "$0" ] && [ -z "$(find "Sources/$m" -newer "$out/obj/$m.o" -name '*.swift')" ] \
     && [ -z "${deps_changed:-}" ]; then continue; fi
  echo "compiling $m" >&2
  "$swiftc" "${flags[@]}" -module-name "$m" -wmo -emit-module -emit-module-path "$out/modules/$m.swiftmodule" \
    -c Sources/$m/*.swift -o "$out/obj/$m.o"
  deps_changed=1
done

objs=("$out"/obj/*.o)
for target in Tests/Fuzz/Targets/*.swift; do
  name=$(basename "$target" .swift)
  [ "$out/bin/$name" -nt "$target" ] && [ -z "${deps_changed:-}" ] && [ "$out/bin/$name" -nt "$0" ] && continue
  echo "linking fuzz-$name" >&2
  "$swiftc" "${flags[@]}" -module-name "Fuzz$name" "$root/$target" "$root/Tests/Fuzz/FuzzInput.swift" "${objs[@]}" \
    -lsentencepiece -lstdc++ -ldl -o "$out/bin/$name"
done
